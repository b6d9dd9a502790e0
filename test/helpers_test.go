package test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/sstest"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ss-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := func() int {
		defer os.RemoveAll(dir)
		// goleak's own TestMain exits: run the check inline instead.
		code := m.Run()
		if code == 0 {
			if err := goleak.Find(testutil.GoleakOptions()...); err != nil {
				fmt.Fprintln(os.Stderr, "goleak:", err)
				return 1
			}
		}
		return code
	}()
	os.Exit(code)
}

// binDir holds binaries built once per test run (ssproxy).
var binDir string

// rawType returns a raw client streamtype.
func rawType(name, endpoint string, port int) *policy.Streamtype {
	return &policy.Streamtype{Name: name, Protocol: policy.Raw, Endpoint: endpoint, Port: uint16(port), ClientCert: -1}
}

func retry(conceal uint16, pct uint8, backoff ...uint32) *policy.Retry {
	return &policy.Retry{Name: "r", Backoff: backoff, Conceal: conceal, JitterPct: pct}
}

func newPolicy(sts ...*policy.Streamtype) *policy.Policy {
	return &policy.Policy{SchemaVersion: 1, Streamtypes: sts}
}

// newRuntime is sstest.NewRuntime.
func newRuntime(t *testing.T, cfg ss.Config) *ss.Runtime { return sstest.NewRuntime(t, cfg) }

// recorder reads a stream's events and renders them for exact comparison:
// states by name, payload as rx(FLAGS,"data") with consecutive raw chunks
// merged.
type recorder struct {
	t    *testing.T
	s    *ss.Stream
	ev   []ss.Event
	at   []time.Time
	pull bool // read with Stream.Recv instead of Events
}

func record(t *testing.T, s *ss.Stream) *recorder { return &recorder{t: t, s: s} }

// recordRecv is record reading with Stream.Recv (pull mode).
func recordRecv(t *testing.T, s *ss.Stream) *recorder { return &recorder{t: t, s: s, pull: true} }

// until reads events until pred is true for one (included), or fails after d.
func (r *recorder) until(d time.Duration, pred func(ss.Event) bool) ss.Event {
	r.t.Helper()
	if r.pull {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		for {
			ev, err := r.s.Recv(ctx)
			if err != nil {
				r.t.Fatalf("Recv: %v; events so far: %s", err, r.String())
			}
			r.ev = append(r.ev, ev)
			r.at = append(r.at, time.Now())
			if pred(ev) {
				return ev
			}
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-r.s.Events():
			if !ok {
				r.t.Fatalf("channel closed; events so far: %s", r.String())
			}
			r.ev = append(r.ev, ev)
			r.at = append(r.at, time.Now())
			if pred(ev) {
				return ev
			}
		case <-timer.C:
			r.t.Fatalf("timeout after %v; events so far: %s", d, r.String())
		}
	}
}

func (r *recorder) untilState(d time.Duration, st ss.State) ss.Event {
	r.t.Helper()
	return r.until(d, func(ev ss.Event) bool { return ev.Kind == ss.StateEvent && ev.State == st })
}

// untilBytes reads until n payload bytes have arrived in total.
func (r *recorder) untilBytes(d time.Duration, n int) {
	r.t.Helper()
	r.until(d, func(ss.Event) bool { return len(r.payload()) >= n })
}

// closed reads the rest and checks the channel closes after DESTROYING.
func (r *recorder) closed(d time.Duration) {
	r.t.Helper()
	r.untilState(d, ss.Destroying)
	if r.pull {
		if ev, err := r.s.Recv(context.Background()); err != io.EOF {
			r.t.Fatalf("Recv after DESTROYING: %v, %v (want io.EOF)", ev, err)
		}
		return
	}
	select {
	case ev, ok := <-r.s.Events():
		if ok {
			r.t.Fatalf("event after DESTROYING: %v", ev)
		}
	case <-time.After(d):
		r.t.Fatal("channel not closed after DESTROYING")
	}
}

func (r *recorder) payload() string {
	var b strings.Builder
	for _, ev := range r.ev {
		if ev.Kind == ss.PayloadEvent && ev.Flags&ss.PerfJSON == 0 {
			b.Write(ev.Payload)
		}
	}
	return b.String()
}

func (r *recorder) String() string {
	var parts []string
	for i := 0; i < len(r.ev); i++ {
		ev := r.ev[i]
		if ev.Kind == ss.StateEvent {
			parts = append(parts, ev.String())
			continue
		}
		data := string(ev.Payload)
		for i+1 < len(r.ev) && r.ev[i+1].Kind == ss.PayloadEvent && r.ev[i+1].Flags == 0 && ev.Flags == 0 {
			i++
			data += string(r.ev[i].Payload)
		}
		parts = append(parts, fmt.Sprintf("rx(%s,%q)", ev.Flags, data))
	}
	return strings.Join(parts, ", ")
}

// expect compares the rendered events.
func (r *recorder) expect(want ...string) {
	r.t.Helper()
	if got := r.String(); got != strings.Join(want, ", ") {
		r.t.Fatalf("events:\n got  %s\n want %s", got, strings.Join(want, ", "))
	}
}

// since returns, for each occurrence of state st, how long after t0 it
// arrived. A slow reader only makes arrivals later, so with t0 taken before
// the stream could act these are safe lower bounds for when the runtime
// emitted each event (gaps between two arrivals are not: a late first
// arrival shortens them).
func (r *recorder) since(t0 time.Time, st ss.State) []time.Duration {
	var out []time.Duration
	for i, ev := range r.ev {
		if ev.Kind == ss.StateEvent && ev.State == st {
			out = append(out, r.at[i].Sub(t0))
		}
	}
	return out
}

// connectDiscarding creates a stream of streamtype name, asks for a
// transmit opportunity and waits for CONNECTED, then discards the stream's
// events on a goroutine of its own until the channel closes: for tests
// that only send.
func connectDiscarding(t *testing.T, ctx context.Context, rt *ss.Runtime, name string) *ss.Stream {
	t.Helper()
	s, err := rt.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestTx(); err != nil {
		t.Fatal(err)
	}
	record(t, s).untilState(wait, ss.Connected)
	go func() {
		for range s.Events() {
		}
	}()
	return s
}

// acceptWithin returns the next accepted stream, failing the test after d
// instead of waiting for ever.
func acceptWithin(t *testing.T, srv *ss.Server, d time.Duration) *ss.Stream {
	t.Helper()
	select {
	case s, ok := <-srv.Accepted():
		if !ok {
			t.Fatal("Accepted closed")
		}
		return s
	case <-time.After(d):
		t.Fatalf("nothing accepted within %v", d)
		return nil
	}
}

// watchdog destroys s and fails the test when a loop over its events has
// not ended within d, so a lost event shows as a failure, not a test
// binary hanging until its timeout. Stop it when the loop is over.
func watchdog(t *testing.T, s *ss.Stream, d time.Duration) *time.Timer {
	return time.AfterFunc(d, func() {
		t.Errorf("stream %s: events did not end within %v", s.Streamtype(), d)
		s.Destroy(context.Background())
	})
}
