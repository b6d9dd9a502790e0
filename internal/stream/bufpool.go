package stream

import (
	mbits "math/bits"
	"sync"
)

// Transmit buffers: Send and Write copy the application's bytes (the caller
// may reuse its slice at once). Buffers of 4 KiB to 1 MiB come from
// power-of-two pools and return to them when a transport that supports it
// (Releaser) has written them, so bulk transmission does not allocate.
const (
	minPooled = 12 // 4 KiB
	maxPooled = 20 // 1 MiB
)

var txPools [maxPooled + 1]sync.Pool

// poolClass returns the pool index for a buffer of n bytes, or -1.
func poolClass(n int) int {
	if n < 1<<minPooled || n > 1<<maxPooled {
		return -1
	}
	return mbits.Len(uint(n - 1))
}

// cloneTx copies p into a buffer the transmit queue owns.
func cloneTx(p []byte) []byte {
	c := poolClass(len(p))
	if c < 0 {
		if p == nil {
			return nil
		}
		return append(make([]byte, 0, len(p)), p...)
	}
	var b []byte
	if v := txPools[c].Get(); v != nil {
		b = (*v.(*[]byte))[:len(p)]
	} else {
		b = make([]byte, len(p), 1<<c)
	}
	copy(b, p)
	return b
}

// releaseTx returns a buffer made by cloneTx to its pool.
func releaseTx(b []byte) {
	if c := poolClass(cap(b)); c >= 0 && cap(b) == 1<<c {
		b = b[:0]
		txPools[c].Put(&b)
	}
}
