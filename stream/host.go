package stream

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/transport"
)

// Default budgets.
const (
	// DefaultRxBudget bounds the received payload queued for the user per
	// stream; Sink.Rx blocks beyond it.
	DefaultRxBudget = 256 << 10
	// DefaultTxBudget bounds the tx data queued per stream; Send blocks
	// beyond it.
	DefaultTxBudget = 256 << 10
)

// Host is what all streams of one runtime share: the actor system, the
// transports' environment, counters, and the bookkeeping Close needs.
type Host struct {
	Actors *actor.System
	Env    *transport.Env
	Logger *slog.Logger
	// Rand returns a uniform integer in [0, n) for backoff jitter (nil:
	// math/rand/v2).
	Rand func(n int64) int64
	// RxBudget and TxBudget override the defaults when > 0.
	RxBudget, TxBudget int

	illegal atomic.Uint64
	nextID  atomic.Uint64

	wg      sync.WaitGroup // attempt goroutines and event pumps
	abandon chan struct{}  // closed when Close gives up waiting for readers
	abOnce  sync.Once

	mu      sync.Mutex
	closed  bool
	streams map[*Stream]struct{}
}

// NewHost returns a Host using actors and env (env must have defaults
// filled in).
func NewHost(actors *actor.System, env *transport.Env) *Host {
	h := &Host{Actors: actors, Env: env, Logger: env.Logger, abandon: make(chan struct{}), streams: map[*Stream]struct{}{}}
	if h.Logger == nil {
		h.Logger = slog.New(slog.DiscardHandler)
	}
	return h
}

// IllegalTransitions is the number of illegal state transitions seen by
// all streams of this host (streams.md §3.2); it should stay 0.
func (h *Host) IllegalTransitions() uint64 { return h.illegal.Load() }

// Streams returns the number of live streams.
func (h *Host) Streams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.streams)
}

func (h *Host) rnd(n int64) int64 {
	if h.Rand != nil {
		return h.Rand(n)
	}
	return rand.Int64N(n)
}

func (h *Host) rxBudget() int {
	if h.RxBudget > 0 {
		return h.RxBudget
	}
	return DefaultRxBudget
}

func (h *Host) txBudget() int {
	if h.TxBudget > 0 {
		return h.TxBudget
	}
	return DefaultTxBudget
}

func (s *Stream) rxBudget() int {
	if s.rxBud > 0 {
		return s.rxBud
	}
	return s.h.rxBudget()
}

func (s *Stream) txBudget() int {
	if s.txBud > 0 {
		return s.txBud
	}
	return s.h.txBudget()
}

func (h *Host) add(s *Stream) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	h.streams[s] = struct{}{}
	h.wg.Add(1) // the stream itself, until its actor has stopped
	return nil
}

func (h *Host) remove(s *Stream) {
	h.mu.Lock()
	_, ok := h.streams[s]
	delete(h.streams, s)
	h.mu.Unlock()
	if ok {
		h.wg.Done()
	}
}

// Close destroys every stream and waits until each has delivered DESTROYING
// and every goroutine of the host has ended. When ctx is done first, the
// events still undelivered are discarded (their channels are closed) and
// Close returns ctx.Err() once the goroutines have ended. Idempotent.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	list := make([]*Stream, 0, len(h.streams))
	for s := range h.streams {
		list = append(list, s)
	}
	h.mu.Unlock()
	for _, s := range list {
		if !s.endUnstarted() {
			s.destroyAsync()
		}
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	h.abOnce.Do(func() { close(h.abandon) })
	<-done
	return ctx.Err()
}
