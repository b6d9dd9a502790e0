package stream

import (
	"testing"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/testutil"
)

// TestQueueArrayRecycled: an HTTP client stream's queue (a channel with
// room) starts with an array from queueArrays and gives it back cleared
// when drained, so a transaction's events cost no allocation and the pool
// keeps no payload or error alive; a stream with an unbuffered channel
// grows its own slice as before.
func TestQueueArrayRecycled(t *testing.T) {
	q := &eventQueue{ch: make(chan event.Event, chanRoom)}
	txn := func() *[queueArray]event.Event {
		for range queueArray - 1 { // a transaction's worth, without growing
			q.appendLocked(event.Event{Kind: event.PayloadEvent, Payload: testPayload, Err: errTestQueue})
		}
		if c := cap(q.items); c != queueArray {
			t.Fatalf("cap %d, want %d", c, queueArray)
		}
		a := (*[queueArray]event.Event)(q.items[:queueArray])
		q.head = len(q.items)
		q.resetLocked()
		return a
	}
	a := txn()
	if q.items != nil || q.head != 0 || q.off != queueArray-1 {
		t.Fatalf("after reset: items %v, head %d, off %d", q.items, q.head, q.off)
	}
	for i, ev := range a {
		if ev.Payload != nil || ev.Err != nil {
			t.Fatalf("slot %d still holds %+v in the pool", i, ev)
		}
	}
	if !testutil.RaceEnabled { // under -race sync.Pool drops some Puts on purpose
		if n := testing.AllocsPerRun(100, func() { txn() }); n > 0.5 {
			t.Errorf("%.1f allocations per transaction's queue, want 0", n)
		}
	}

	raw := &eventQueue{ch: make(chan event.Event)}
	raw.appendLocked(event.Event{Kind: event.StateEvent, State: event.Connected})
	if c := cap(raw.items); c == queueArray {
		t.Errorf("a stream with an unbuffered channel took a pooled array (cap %d)", c)
	}
}

var (
	testPayload        = []byte("x")
	errTestQueue error = testError("queued error")
)

type testError string

func (e testError) Error() string { return string(e) }
