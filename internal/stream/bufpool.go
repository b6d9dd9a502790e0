package stream

import "github.com/securestreams/ss/internal/bufpool"

// Transmit buffers: Send and Write copy the application's bytes (the caller
// may reuse its slice at once). Buffers of 4 KiB to 1 MiB come from the
// shared power-of-two pools (internal/bufpool) and return to them when a
// transport that supports it (Releaser) has written them, so bulk
// transmission does not allocate.

// cloneTx copies p into a buffer the transmit queue owns.
func cloneTx(p []byte) []byte {
	if p == nil {
		return nil
	}
	b := bufpool.Get(len(p))
	copy(b, p)
	return b
}

// releaseTx returns a buffer made by cloneTx to its pool.
func releaseTx(b []byte) { bufpool.Put(b) }
