package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/event"
)

// Provider obtains a new token. A Refresher calls Refresh from a goroutine
// of its own, never twice at once, with a context that ends at the
// refresher's Timeout or Close.
type Provider interface {
	Refresh(ctx context.Context) (Token, error)
}

// Dependent is implemented by providers whose result depends on store slots
// (LWA credentials, a signing key): a change there makes an active
// Refresher refresh at once, and lifts the stop after a permanent failure.
type Dependent interface {
	DependsOn(Change) bool
}

// RefresherConfig configures a Refresher. Store and Provider are required.
type RefresherConfig struct {
	// Scheme is the policy auth[] name (for errors and logs).
	Scheme string
	// Slot is the token slot kept fresh (auth[].blob).
	Slot     int
	Store    *Store
	Provider Provider
	// Actors runs the refresher actor; nil: the store's actor system.
	Actors *actor.System
	// Logger receives refresh failures and successes (never a secret); nil
	// is silent.
	Logger *slog.Logger
	// Tuning adjusts timing; zero fields take the defaults.
	Tuning
}

// Refresher is the actor that keeps one scheme's token slot fresh. It is
// also a stream attempt gate (Check, Watch). All methods are safe from any
// goroutine.
type Refresher struct {
	cfg       RefresherConfig
	sys       *actor.System
	logger    *slog.Logger
	dep       Dependent // cfg.Provider as a Dependent, or nil
	pid       *actor.PID
	ctx       context.Context // ends at Close: cancels a refresh in flight
	cancel    context.CancelFunc
	wg        sync.WaitGroup // the refresh goroutine
	done      chan struct{}  // closed when the actor has stopped
	once      sync.Once
	stopWatch func()

	failure   atomic.Pointer[RefreshError] // published for Check; nil while fine
	refreshes atomic.Uint64                // refreshes started

	watchers watchSet[func()]

	a refresherState // owned by the actor
}

type refresherState struct {
	active   bool // a stream needed the token at least once
	inflight bool
	again    bool // a dependency changed during the refresh in flight
	retrying bool // a backoff timer is armed
	blocked  bool // permanent failure: wait for a dependency change or Refresh
	current  Token
	backoff  time.Duration
	timer    *time.Timer
	gen      uint64 // timer generation; a tick of an older one is ignored
}

type (
	msgNeed   struct{}
	msgForce  struct{}
	msgTick   struct{ gen uint64 }
	msgResult struct {
		tok Token
		err error
	}
	msgChanged struct{}
)

// NewRefresher starts the refresher actor for cfg. It refreshes lazily: the
// first refresh starts when a stream's gate finds no valid token (or on
// Refresh); from then on the token is kept fresh.
func NewRefresher(cfg RefresherConfig) (*Refresher, error) {
	if cfg.Store == nil || cfg.Provider == nil {
		return nil, errors.New("ss: auth: RefresherConfig needs a Store and a Provider")
	}
	if !inRange(cfg.Slot) {
		return nil, fmt.Errorf("%w: scheme %q slot %d", errSlot, cfg.Scheme, cfg.Slot)
	}
	if cfg.RefreshAt <= 0 || cfg.RefreshAt > 1 {
		cfg.RefreshAt = 0.9
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Minute, cfg.MinBackoff)
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = time.Second
	}
	r := &Refresher{cfg: cfg, sys: cfg.Actors, logger: cfg.Logger, done: make(chan struct{})}
	if r.sys == nil {
		r.sys = cfg.Store.sys
	}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	r.dep, _ = cfg.Provider.(Dependent)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	pid, err := r.sys.Spawn(actor.PropsFromReceiver(r), "ss-auth-"+cfg.Scheme+"-")
	if err != nil {
		r.cancel()
		return nil, err
	}
	r.pid = pid
	r.stopWatch = cfg.Store.Watch(r.storeChanged)
	return r, nil
}

// storeChanged runs on the store actor: token updates reach the gates'
// watchers (the token is published by then), dependency changes the actor.
func (r *Refresher) storeChanged(ch Change) {
	if ch.Kind == KindToken && ch.Slot == r.cfg.Slot {
		r.notify()
	}
	if r.dep != nil && r.dep.DependsOn(ch) {
		r.sys.Tell(r.pid, msgChanged{})
	}
}

// Receive is the refresher actor's behaviour.
func (r *Refresher) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case msgNeed:
		r.a.active = true
		if r.a.inflight || r.a.retrying || r.a.blocked || r.a.current.Valid(time.Now()) {
			return
		}
		r.start()
	case msgForce:
		r.a.active, r.a.blocked = true, false
		r.startOrAgain()
	case msgChanged:
		if !r.a.active {
			return
		}
		r.a.blocked = false
		r.startOrAgain()
	case msgTick:
		if m.gen != r.a.gen {
			return
		}
		r.a.retrying = false
		if !r.a.inflight && !r.a.blocked {
			r.start()
		}
	case msgResult:
		r.result(m.tok, m.err)
	case *actor.Stopped:
		r.a.gen++
		if r.a.timer != nil {
			r.a.timer.Stop()
		}
		r.cancel()
		r.sys.Forget(c.Self())
		close(r.done)
	}
}

func (r *Refresher) startOrAgain() {
	if r.a.inflight {
		r.a.again = true
		return
	}
	r.disarm()
	r.start()
}

// start runs one refresh in a goroutine; its result comes back as msgResult.
func (r *Refresher) start() {
	r.a.inflight, r.a.again = true, false
	r.refreshes.Add(1)
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.Timeout)
	p, pid := r.cfg.Provider, r.pid
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel()
		tok, err := p.Refresh(ctx)
		if err == nil && !tok.Valid(time.Now()) {
			err = fmt.Errorf("%w: the provider returned an empty or expired token", errBadResponse)
		}
		r.sys.Tell(pid, msgResult{tok: tok, err: err})
	}()
}

func (r *Refresher) result(tok Token, err error) {
	r.a.inflight = false
	if err == nil {
		r.a.current = tok
		r.a.backoff = 0
		r.failure.Store(nil)
		if serr := r.cfg.Store.setTokenAsync(r.cfg.Slot, tok); serr != nil {
			return // the store is closing
		}
		r.logger.Debug("ss: auth: token refreshed", "scheme", r.cfg.Scheme, "expiry", tok.Expiry)
		if r.a.again {
			r.start()
			return
		}
		if !tok.Expiry.IsZero() {
			issued := tok.Issued
			if issued.IsZero() {
				issued = time.Now()
			}
			at := issued.Add(time.Duration(float64(tok.Expiry.Sub(issued)) * r.cfg.RefreshAt))
			r.arm(max(time.Until(at), r.cfg.MinInterval), false)
		}
		return
	}
	if r.ctx.Err() != nil {
		return // closing
	}
	fe := &RefreshError{Scheme: r.cfg.Scheme, Err: err, Permanent: permanent(err)}
	r.failure.Store(fe)
	r.logger.Warn("ss: auth: token refresh failed", "scheme", r.cfg.Scheme, "permanent", fe.Permanent, "err", err)
	if r.a.again {
		r.start()
		return
	}
	if fe.Permanent {
		r.a.blocked = true
		r.disarm()
	} else {
		if r.a.backoff == 0 {
			r.a.backoff = r.cfg.MinBackoff
		} else {
			r.a.backoff = min(2*r.a.backoff, r.cfg.MaxBackoff)
		}
		r.arm(r.a.backoff, true)
	}
	r.notify()
}

// permanent reports whether err is not worth retrying with backoff.
func permanent(err error) bool {
	if errors.Is(err, errNoCredentials) {
		return true
	}
	var oe *OAuthError
	return errors.As(err, &oe) && oauthPermanent(oe)
}

func (r *Refresher) arm(d time.Duration, retrying bool) {
	r.disarm()
	r.a.retrying = retrying
	gen := r.a.gen
	sys, pid := r.sys, r.pid
	r.a.timer = time.AfterFunc(d, func() { sys.Tell(pid, msgTick{gen: gen}) })
}

func (r *Refresher) disarm() {
	r.a.gen++
	r.a.retrying = false
	if r.a.timer != nil {
		r.a.timer.Stop()
		r.a.timer = nil
	}
}

func (r *Refresher) notify() {
	for _, fn := range r.watchers.list() {
		fn()
	}
}

// Check reports whether a stream using this scheme may start a connection
// attempt: yes while the slot holds a valid token. Otherwise it asks for a
// refresh (one runs at a time, however many streams ask) and reports
// event.AuthFailed with a *RefreshError while refreshing fails, or state 0
// while the first token is on its way. It is the stream.Gate contract.
func (r *Refresher) Check() (open bool, state event.State, err error) {
	if r.cfg.Store.Token(r.cfg.Slot).Valid(time.Now()) {
		return true, 0, nil
	}
	select {
	case <-r.done:
		return false, event.AuthFailed, fmt.Errorf("ss: auth: scheme %q: %w", r.cfg.Scheme, errClosed)
	default:
	}
	r.sys.Tell(r.pid, msgNeed{})
	if fe := r.failure.Load(); fe != nil {
		return false, event.AuthFailed, fe
	}
	return false, 0, nil
}

// Watch calls notify (which must not block) whenever Check's answer may
// have changed: a token arrived or a refresh failed. stop unregisters it.
func (r *Refresher) Watch(notify func()) (stop func()) {
	return r.watchers.add(notify)
}

// Refresh asks for a refresh now, even after a permanent failure (for
// example once the application has fixed the credentials). It does not
// wait.
func (r *Refresher) Refresh() { r.sys.Tell(r.pid, msgForce{}) }

// Err returns the cause of the last refresh failure (a *RefreshError), or
// nil when the last refresh succeeded or none has failed.
func (r *Refresher) Err() error {
	if fe := r.failure.Load(); fe != nil {
		return fe
	}
	return nil
}

// Refreshes returns how many refreshes have started.
func (r *Refresher) Refreshes() uint64 { return r.refreshes.Load() }

// Scheme returns the policy auth[] name.
func (r *Refresher) Scheme() string { return r.cfg.Scheme }

// Close stops the refresher: a refresh in flight is cancelled and waited
// for (bounded by ctx). The token stays in the store. Idempotent.
func (r *Refresher) Close(ctx context.Context) error {
	r.once.Do(func() {
		r.stopWatch()
		r.sys.Stop(r.pid)
	})
	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	wait := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(wait)
	}()
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
