package stream

import (
	"testing"
	"unsafe"
)

// TestStreamSize: a Stream fits the 704 B size class with the 8 B
// allocation header Go puts before objects over 512 B; one byte more and
// every stream costs 768 B (PERFORMANCE.md, "Memory per proxied stream").
// Fields are ordered so that bools and 32-bit counters share words.
func TestStreamSize(t *testing.T) {
	if n := unsafe.Sizeof(Stream{}); n > 696 {
		t.Errorf("Stream is %d B, more than 696 B: it moved to a larger size class", n)
	}
	if n := unsafe.Sizeof(actorState{}); n > 144 {
		t.Errorf("actorState is %d B, more than its 144 B size class", n)
	}
}
