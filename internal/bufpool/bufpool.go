// Package bufpool recycles payload buffers of 4 KiB to 1 MiB in
// power-of-two classes: transmit buffers (the stream's copies of what Send
// and Write were given, returned once a transport has written them) and
// receive buffers (the raw transport's reads, returned by the application
// with Event.Release). A buffer is pooled by its capacity, so only buffers
// whose capacity is exactly a class size go back (docs/performance.md).
package bufpool

import (
	mbits "math/bits"
	"sync"
	"unsafe"
)

// MinClass and MaxClass bound the pooled sizes: 1<<MinClass (4 KiB) to
// 1<<MaxClass (1 MiB). Smaller buffers are cheap to allocate; larger ones
// are rare and would pin too much memory.
const (
	MinClass = 12
	MaxClass = 20
)

// pools hold the first byte of each free buffer (a *byte in an interface
// does not allocate, unlike a slice).
var pools [MaxClass + 1]sync.Pool

// class returns the pool index for a buffer of n bytes, or -1.
func class(n int) int {
	if n < 1<<MinClass || n > 1<<MaxClass {
		return -1
	}
	return mbits.Len(uint(n - 1))
}

// Get returns a buffer of length n: from its class's pool (capacity the
// class size) when n is in the pooled range, else a new exact-size one.
// Its contents are not zeroed.
func Get(n int) []byte {
	c := class(n)
	if c < 0 {
		return make([]byte, n)
	}
	if v := pools[c].Get(); v != nil {
		return unsafe.Slice(v.(*byte), 1<<c)[:n]
	}
	return make([]byte, n, 1<<c)
}

// Put hands b's storage back to the pool of its capacity when that is a
// class size; other buffers are left to the garbage collector. The caller
// must not use b, or any slice sharing its storage, afterwards.
func Put(b []byte) {
	c := cap(b)
	if c < 1<<MinClass || c > 1<<MaxClass || c&(c-1) != 0 {
		return
	}
	pools[mbits.Len(uint(c-1))].Put(unsafe.SliceData(b[:c]))
}
