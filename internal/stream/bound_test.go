package stream

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/policy"
)

// TestUnreadStreamStops: a stream nobody reads that retries every
// millisecond stops starting attempts once StateBound states wait; no state
// is dropped, and reading lets it go on.
func TestUnreadStreamStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		typ := st("u", rtry(65535, 0, 1))
		p := &fakeProto{run: refuse}
		s, err := New(e.h, Config{Policy: &policy.Policy{Streamtypes: []*policy.Streamtype{typ}}, Type: typ, Protocol: p})
		if err != nil {
			t.Fatal(err)
		}
		s.RequestTx()
		settle(time.Hour)
		n := p.count()
		// CREATING, then POLL, CONNECTING, UNREACHABLE per attempt: the
		// attempt that reaches the bound is the last.
		if want := (StateBound - 1 + 2) / 3; n != want {
			t.Fatalf("%d attempts while unread, want %d", n, want)
		}
		s.mu.Lock()
		queued := s.q.states
		s.mu.Unlock()
		if queued > StateBound+3 {
			t.Fatalf("%d states queued, want at most %d", queued, StateBound+3)
		}
		// Read everything queued: every state is there, in order.
		var got []event.State
		for len(got) < 1+3*n {
			ev := <-s.Events()
			got = append(got, ev.State)
		}
		if got[0] != event.Creating {
			t.Fatalf("first event %v", got[0])
		}
		for i := 0; i < n; i++ {
			if got[1+3*i] != event.Poll || got[2+3*i] != event.Connecting || got[3+3*i] != event.Unreachable {
				t.Fatalf("attempt %d: %v", i+1, got[1+3*i:4+3*i])
			}
		}
		// The stream goes on once read.
		go func() {
			for range s.Events() {
			}
		}()
		settle(time.Second)
		if p.count() <= n {
			t.Fatalf("no attempt after the application read (%d attempts)", p.count())
		}
		if err := s.Destroy(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}
