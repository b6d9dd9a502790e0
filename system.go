package ss

import (
	"context"
	"fmt"
	"sync"

	"github.com/securestreams/ss/internal/stream"
	"github.com/securestreams/ss/policy"
)

// system runs the runtime's system streamtypes: fetch_policy
// (fetchpolicy.go, docs/fetch-policy.md) and captive_portal_detect
// (network.go, docs/captive-portal.md). Its goroutines end at Close.
type system struct {
	rt  *Runtime
	cfg Config

	ctx    context.Context // cancelled when the runtime closes
	cancel context.CancelFunc
	mu     sync.Mutex // guards stopped and wg.Add against wait
	stop_  bool
	wg     sync.WaitGroup

	fetch *fetcher
	net   *netMonitor
}

// startSystem is called by New once the runtime can create streams.
func (rt *Runtime) startSystem(cfg *Config) {
	sys := &system{rt: rt, cfg: *cfg}
	sys.ctx, sys.cancel = context.WithCancel(context.Background())
	sys.fetch = newFetcher(sys)
	sys.net = newNetMonitor(sys)
	rt.sys = sys
	if rt.proxy == nil && !cfg.PolicyFetch.NoFetchAtStart && rt.pol.Load().Streamtype(fetchPolicyName) != nil {
		sys.go_(func() { _, _ = sys.fetch.run(sys.ctx) })
	}
	if rt.proxy == nil && (cfg.CheckNetworkAtStart || cfg.HoldUntilOnline) && rt.pol.Load().Streamtype(captivePortalName) != nil {
		sys.go_(func() { _, _ = sys.net.check(sys.ctx) })
	}
}

// go_ runs f on a goroutine Close waits for; nothing once Close began.
func (sys *system) go_(f func()) {
	sys.mu.Lock()
	defer sys.mu.Unlock()
	if sys.stop_ {
		return
	}
	sys.wg.Add(1)
	go func() {
		defer sys.wg.Done()
		f()
	}()
}

// stop cancels the system's work (their streams are destroyed) before the
// runtime destroys the rest.
func (sys *system) stop() {
	if sys == nil {
		return
	}
	sys.mu.Lock()
	sys.stop_ = true
	sys.mu.Unlock()
	sys.cancel()
}

// wait waits for the system goroutines (after the streams are gone) and
// closes the outcome channels.
func (sys *system) wait() {
	if sys == nil {
		return
	}
	sys.wg.Wait()
	sys.fetch.close()
	sys.net.close()
}

// bind returns ctx, also cancelled when the runtime closes, and the
// function that releases it.
func (sys *system) bind(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(sys.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// nextEvent waits for s's next event; ErrClosed when its channel is closed.
func nextEvent(ctx context.Context, s *Stream) (Event, error) {
	select {
	case ev, ok := <-s.Events():
		if !ok {
			return Event{}, ErrClosed
		}
		return ev, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// createSystemStream creates a client stream of st (taken from pol, or
// derived from one of its streamtypes) for the runtime's own use. Like
// Create, but the streamtype need not be in the installed policy by name.
func (rt *Runtime) createSystemStream(pol *policy.Policy, st *policy.Streamtype, gates []stream.Gate) (*Stream, error) {
	proto, err := rt.clientProtocol(st.Protocol)
	if err != nil {
		return nil, fmt.Errorf("ss: streamtype %q: %w", st.Name, err)
	}
	s, err := stream.New(rt.host, stream.Config{Policy: pol, Type: st, Protocol: proto, Framing: txFraming[st.Protocol], Gates: gates})
	if err != nil {
		return nil, err
	}
	return &Stream{s: s}, nil
}

// offer sends v on ch, dropping the oldest queued value when ch is full, so
// a slow reader finds the newest values and the sender never blocks.
func offer[T any](ch chan T, v T) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}
