package stream

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
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
	// Traits returns a protocol's Traits (nil: zero Traits for every
	// protocol). Set before the first stream is created.
	Traits func(p policy.Protocol) Traits

	illegal  atomic.Uint64
	nextID   atomic.Uint64
	isClosed atomic.Bool // Close was called (written once, by Close)

	wg      sync.WaitGroup // streams until their actor stopped, attempt and driver goroutines
	pumps   sync.WaitGroup // event pumps (they wait for the application)
	abandon chan struct{}  // closed when Close stops waiting for readers
	runners runners        // the goroutines attempts run on (runner.go)
	abOnce  sync.Once

	mu       sync.Mutex
	closed   bool
	streams  map[*Stream]struct{}
	traitTab map[policy.Protocol]*Traits // traitsFor's copies
}

// NewHost returns a Host using actors and env (env must have defaults
// filled in).
func NewHost(actors *actor.System, env *transport.Env) *Host {
	h := &Host{Actors: actors, Env: env, Logger: env.Logger, abandon: make(chan struct{}), streams: map[*Stream]struct{}{}}
	h.runners.quit = make(chan struct{})
	if h.Logger == nil {
		h.Logger = slog.New(slog.DiscardHandler)
	}
	return h
}

// IllegalTransitions is the number of illegal state transitions seen by
// all streams of this host (docs/streams.md §3.2); it should stay 0.
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
	if n := s.rxBudSet.Load(); n > 0 {
		return int(n)
	}
	if n := s.cfg().rxBud; n > 0 {
		return n
	}
	return s.h.rxBudget()
}

func (s *Stream) txBudget() int {
	if n := s.cfg().txBud; n > 0 {
		return n
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
	s.added = true
	h.wg.Add(1) // the stream itself, until its actor has stopped
	return nil
}

// detach stops counting s as live (Streams) once its DESTROYING is queued;
// Close still waits for its actor (remove).
func (h *Host) detach(s *Stream) {
	h.mu.Lock()
	delete(h.streams, s)
	h.mu.Unlock()
}

// remove forgets s once its actor has stopped (or was never started).
func (h *Host) remove(s *Stream) {
	h.mu.Lock()
	delete(h.streams, s)
	done := s.added && !s.removed
	s.removed = true
	h.mu.Unlock()
	if done {
		h.wg.Done()
	}
}

// CloseGrace is how long Close lets applications take the events still
// queued once every stream's transport has stopped, before it discards them
// and closes the channels.
const CloseGrace = 300 * time.Millisecond

// Close destroys every stream and waits until every stream's transport has
// stopped (attempts and drivers ended, DESTROYING queued) or ctx is done.
// Then it gives readers CloseGrace to take what is queued, discards the
// events still undelivered (a stream nobody reads, or one left after
// breaking out of a loop over its events), closes every channel and waits
// for the host's goroutines. It returns ctx.Err() when ctx ended the wait
// for transports, nil otherwise; ctx bounds only that wait. Idempotent.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.isClosed.Store(true)
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
	work := make(chan struct{})
	go func() { h.wg.Wait(); close(work) }()
	var err error
	select {
	case <-work:
	case <-ctx.Done():
		err = ctx.Err()
	}
	pumps := make(chan struct{})
	go func() { h.pumps.Wait(); close(pumps) }()
	if err == nil {
		t := time.NewTimer(CloseGrace)
		select {
		case <-pumps:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	h.abOnce.Do(func() { close(h.abandon) })
	<-pumps
	// Discarding released any transport still waiting to queue payload;
	// the destroyed streams' attempts have been cancelled.
	<-work
	h.runners.close()
	return err
}
