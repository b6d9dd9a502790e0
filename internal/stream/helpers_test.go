package stream

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.GoleakOptions()...)
}

// fakeProto is a scripted transport: run is called for every attempt with
// its 1-based number.
type fakeProto struct {
	mu       sync.Mutex
	attempts int
	causes   []error
	run      func(n int, ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result
}

func (f *fakeProto) Run(ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
	f.mu.Lock()
	f.attempts++
	n := f.attempts
	f.mu.Unlock()
	res := f.run(n, ctx, a, sink)
	f.mu.Lock()
	f.causes = append(f.causes, context.Cause(ctx))
	f.mu.Unlock()
	return res
}

func (f *fakeProto) Close(context.Context) error { return nil }

func (f *fakeProto) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts
}

// Behaviours.
func refuse(int, context.Context, *transport.Attempt, transport.Sink) transport.Result {
	return transport.Result{Err: fmt.Errorf("refused")}
}

func connectAndHold(_ int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
	sink.State(event.Connected, 0)
	<-ctx.Done()
	return transport.Result{Err: context.Cause(ctx)}
}

// connectFor connects and the connection ends after d (or when cut).
func connectFor(d time.Duration) func(int, context.Context, *transport.Attempt, transport.Sink) transport.Result {
	return func(_ int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
		sink.State(event.Connected, 0)
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
		return transport.Result{}
	}
}

func hang(_ int, ctx context.Context, _ *transport.Attempt, _ transport.Sink) transport.Result {
	<-ctx.Done()
	return transport.Result{Err: context.Cause(ctx)}
}

// testTraits mirrors the root package's protocolTraits for the protocols
// these tests use.
var testTraits = map[policy.Protocol]Traits{
	policy.H1: {Transactional: true,
		EndTimeoutOn:    []event.State{event.QoSAckRemote, event.QoSNackRemote, event.QoSAckLocal},
		ResetFailuresOn: []event.State{event.QoSAckRemote, event.QoSNackRemote, event.QoSAckLocal}},
	policy.Raw: {TimeoutEndsWithConnection: true},
}

// env is a test host inside a synctest bubble.
type env struct {
	t     *testing.T
	h     *Host
	start time.Time
}

func newEnv(t *testing.T) *env {
	sys := actor.NewSystem(nil)
	h := NewHost(sys, transport.Env{}.Defaults())
	h.Traits = func(p policy.Protocol) Traits { return testTraits[p] }
	e := &env{t: t, h: h, start: time.Now()}
	t.Cleanup(func() {
		if err := h.Close(context.Background()); err != nil {
			t.Errorf("host Close: %v", err)
		}
		if err := sys.Shutdown(context.Background()); err != nil {
			t.Errorf("actors Shutdown: %v", err)
		}
		if n := h.IllegalTransitions(); n != 0 && !t.Failed() {
			t.Errorf("IllegalTransitions = %d", n)
		}
	})
	return e
}

func st(name string, r *policy.Retry) *policy.Streamtype {
	return &policy.Streamtype{Name: name, Protocol: policy.Raw, Endpoint: "127.0.0.1", Port: 1, Retry: r, ClientCert: -1}
}

func rtry(conceal uint16, pct uint8, backoff ...uint32) *policy.Retry {
	return &policy.Retry{Name: "r", Backoff: backoff, Conceal: conceal, JitterPct: pct}
}

// rec collects a stream's events with their (fake) time since the start.
type rec struct {
	mu  sync.Mutex
	evs []event.Event
	at  []time.Duration
	end chan struct{}
}

func (e *env) create(typ *policy.Streamtype, p transport.Protocol) (*Stream, *rec) {
	e.t.Helper()
	s, err := New(e.h, Config{Policy: &policy.Policy{Streamtypes: []*policy.Streamtype{typ}}, Type: typ, Protocol: p})
	if err != nil {
		e.t.Fatal(err)
	}
	return s, e.record(s)
}

// record collects s's events until its channel closes.
func (e *env) record(s *Stream) *rec {
	r := &rec{end: make(chan struct{})}
	go func() {
		defer close(r.end)
		for ev := range s.Events() {
			r.mu.Lock()
			r.evs = append(r.evs, ev)
			r.at = append(r.at, time.Since(e.start))
			r.mu.Unlock()
		}
	}()
	return r
}

// settle lets fake time pass and every goroutine block.
func settle(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func (r *rec) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	for _, ev := range r.evs {
		if ev.Kind == event.PayloadEvent {
			parts = append(parts, fmt.Sprintf("rx(%s,%q)", ev.Flags, ev.Payload))
		} else {
			parts = append(parts, ev.String())
		}
	}
	return strings.Join(parts, ", ")
}

// timed renders "STATE@ms" for every state event.
func (r *rec) timed() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	for i, ev := range r.evs {
		if ev.Kind == event.StateEvent {
			parts = append(parts, fmt.Sprintf("%s@%d", ev.State, r.at[i].Milliseconds()))
		}
	}
	return strings.Join(parts, " ")
}

func (r *rec) expect(t *testing.T, want ...string) {
	t.Helper()
	if got := r.String(); got != strings.Join(want, ", ") {
		t.Fatalf("events:\n got  %s\n want %s", got, strings.Join(want, ", "))
	}
}

func (r *rec) expectTimed(t *testing.T, want string) {
	t.Helper()
	if got := r.timed(); got != want {
		t.Fatalf("timed events:\n got  %s\n want %s", got, want)
	}
}

func destroy(t *testing.T, s *Stream, r *rec) {
	t.Helper()
	if err := s.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-r.end
}
