package stream

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// stateErrs returns the Err of every state event named st.
func (r *rec) stateErrs(st event.State) []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []error
	for _, ev := range r.evs {
		if ev.Kind == event.StateEvent && ev.State == st {
			out = append(out, ev.Err)
		}
	}
	return out
}

// TestCauses: UNREACHABLE and ALL_RETRIES_FAILED carry the attempt's error,
// a lost connection's DISCONNECTED carries its error, one asked for by
// Disconnect carries none, TIMEOUT carries a *TimeoutError, and
// Stats.LastError is the last failure.
func TestCauses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		lost := errors.New("peer reset")
		refused := errors.New("refused here")
		p := &fakeProto{run: func(n int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
			switch n {
			case 1:
				sink.State(event.Connected, 0)
				return transport.Result{Err: lost}
			case 2:
				return transport.Result{Err: refused}
			}
			sink.State(event.Connected, 0)
			<-ctx.Done()
			return transport.Result{Err: context.Cause(ctx)}
		}}
		s, r := e.create(st("c", rtry(1, 0, 100)), p)
		s.Connect()
		settle(time.Second)
		r.expect(t, "CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "POLL", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED")
		if d := r.stateErrs(event.Disconnected); !errors.Is(d[0], lost) {
			t.Fatalf("DISCONNECTED Err = %v, want %v", d[0], lost)
		}
		if u := r.stateErrs(event.Unreachable); !errors.Is(u[0], refused) {
			t.Fatalf("UNREACHABLE Err = %v, want %v", u[0], refused)
		}
		if a := r.stateErrs(event.AllRetriesFailed); !errors.Is(a[0], refused) {
			t.Fatalf("ALL_RETRIES_FAILED Err = %v, want %v", a[0], refused)
		}
		if last := s.Stats().LastError; !errors.Is(last, refused) {
			t.Fatalf("LastError = %v, want %v", last, refused)
		}
		s.Connect()
		settle(time.Second)
		s.StartTimeout(300 * time.Millisecond)
		settle(time.Second)
		s.Disconnect()
		settle(time.Second)
		d := r.stateErrs(event.Disconnected)
		if len(d) != 2 || d[1] != nil {
			t.Fatalf("DISCONNECTED Errs %v, want the second (Disconnect) nil", d)
		}
		var te *TimeoutError
		if to := r.stateErrs(event.Timeout); len(to) != 1 || !errors.As(to[0], &te) || te.After != 300*time.Millisecond ||
			!errors.Is(to[0], ErrStreamTimeout) {
			t.Fatalf("TIMEOUT Errs %v, want one *TimeoutError after 300ms", to)
		}
		destroy(t, s, r)
	})
}
