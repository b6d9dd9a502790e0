package stream

import (
	"context"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
)

// TestDrainWithoutPump: an event queued while the application waits on
// the channel is handed over on the queuing goroutine (drainLocked) rather
// than by a pump goroutine started for it (two per HTTP transaction
// before: its CONNECTED and DISCONNECTED, decided by the actor); the
// budget and state counts are kept as the pump keeps them, and the order
// holds.
func TestDrainWithoutPump(t *testing.T) {
	e := newEnv(t)
	s, err := New(e.h, Config{Type: st("drain", nil), Protocol: &fakeProto{run: hang}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		go s.Destroy(context.Background())
		for range s.Events() {
		}
	}()
	ev := s.Events()
	if got := <-ev; got.Kind != event.StateEvent || got.State != event.Creating {
		t.Fatalf("first event %v", got)
	}
	got := make(chan event.Event)
	drained := 0
	for i := range 50 {
		go func() { got <- <-ev }()
		time.Sleep(time.Millisecond) // let the reader block on the channel
		s.mu.Lock()
		s.q.items = append(s.q.items, event.Event{Kind: event.PayloadEvent, Payload: []byte{byte(i)}})
		s.q.rxBytes += 1 + rxOverhead
		s.startPumpLocked()
		if !s.q.pumping {
			drained++
		}
		s.mu.Unlock()
		if p := <-got; len(p.Payload) != 1 || p.Payload[0] != byte(i) {
			t.Fatalf("event %d: %v", i, p)
		}
	}
	if drained == 0 {
		t.Error("every event was delivered by a pump goroutine, none on the queuing goroutine")
	}
	s.mu.Lock()
	for s.q.pumping { // a pump started for an event the reader was not yet waiting for
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
		s.mu.Lock()
	}
	if s.q.rxBytes != 0 || s.q.head != len(s.q.items) {
		t.Errorf("after delivery: rxBytes %d, %d events queued", s.q.rxBytes, len(s.q.items)-s.q.head)
	}
	s.mu.Unlock()
}
