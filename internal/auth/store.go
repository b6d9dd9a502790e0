package auth

import (
	"context"
	"crypto"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/securestreams/ss/actor"
)

// Store holds the blob slots. One store actor applies every update, in the
// order they were made, to a copy of the current snapshot, publishes the new
// snapshot and then tells the watchers; reads load the published snapshot
// and never block. All methods are safe from any goroutine.
type Store struct {
	sys    *actor.System
	ownSys bool
	logger *slog.Logger
	pid    *actor.PID
	snap   atomic.Pointer[snapshot]
	done   chan struct{} // closed when the actor has stopped
	once   sync.Once

	watchers watchSet[func(Change)]
}

type snapshot struct {
	tokens [Slots]Token
	lwa    [Slots]LWACredentials
	keys   [Slots]crypto.Signer
	certs  [Slots]*tls.Certificate
	creds  [Slots]aws.CredentialsProvider // each an *aws.CredentialsCache
	device Device
}

// update is the store actor's only message: apply changes the copy it is
// given; done (optional) is closed once the snapshot is published and the
// watchers told.
type update struct {
	apply  func(*snapshot)
	change Change
	done   chan struct{}
}

// NewStore starts a store actor in sys; nil sys makes a private actor system
// that Close shuts down. logger may be nil (silent); secrets are never
// logged.
func NewStore(sys *actor.System, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{sys: sys, logger: logger, done: make(chan struct{})}
	if s.sys == nil {
		s.sys = actor.NewSystem(logger)
		s.ownSys = true
	}
	s.snap.Store(&snapshot{})
	pid, err := s.sys.Spawn(actor.PropsFromReceiver(s), "ss-auth-store-")
	if err != nil {
		if s.ownSys {
			_ = s.sys.Shutdown(context.Background())
		}
		return nil, err
	}
	s.pid = pid
	return s, nil
}

// Receive is the store actor's behaviour.
func (s *Store) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case update:
		next := *s.snap.Load()
		m.apply(&next)
		s.snap.Store(&next)
		s.logger.Debug("ss: auth: slot updated", "kind", m.change.Kind.String(), "slot", m.change.Slot)
		s.notify(m.change)
		if m.done != nil {
			close(m.done)
		}
	case *actor.Stopped:
		s.sys.Forget(c.Self())
		close(s.done)
	}
}

func (s *Store) notify(ch Change) {
	for _, fn := range s.watchers.list() {
		fn(ch)
	}
}

// Watch calls fn, from the store actor, after every update has been
// published (a read from fn sees it). fn must not block. stop unregisters
// it; fn may still run once concurrently with stop.
func (s *Store) Watch(fn func(Change)) (stop func()) {
	return s.watchers.add(fn)
}

// Close stops the store actor (and its private actor system); idempotent.
// Reads keep answering with the last snapshot; updates fail with errClosed.
func (s *Store) Close(ctx context.Context) error {
	s.once.Do(func() { s.sys.Stop(s.pid) })
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.ownSys {
		return s.sys.Shutdown(ctx)
	}
	return nil
}

// set sends an update; with wait it returns once the update is published.
func (s *Store) set(ctx context.Context, wait bool, ch Change, apply func(*snapshot)) error {
	if ch.Slot < 0 || ch.Slot >= Slots {
		return fmt.Errorf("%w: %s slot %d", errSlot, ch.Kind, ch.Slot)
	}
	select {
	case <-s.done:
		return errClosed
	default:
	}
	u := update{apply: apply, change: ch}
	if !wait {
		s.sys.Tell(s.pid, u)
		return nil
	}
	u.done = make(chan struct{})
	s.sys.Tell(s.pid, u)
	select {
	case <-u.done:
		return nil
	case <-s.done:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetToken stores tok in token slot and returns once it is published.
func (s *Store) SetToken(ctx context.Context, slot int, tok Token) error {
	return s.set(ctx, true, Change{KindToken, slot}, func(n *snapshot) { n.tokens[slot] = tok })
}

// setTokenAsync is SetToken for actors: it does not wait.
func (s *Store) setTokenAsync(slot int, tok Token) error {
	return s.set(context.Background(), false, Change{KindToken, slot}, func(n *snapshot) { n.tokens[slot] = tok })
}

// SetLWA stores the Login With Amazon refresh credentials of slot.
func (s *Store) SetLWA(ctx context.Context, slot int, c LWACredentials) error {
	return s.set(ctx, true, Change{KindLWA, slot}, func(n *snapshot) { n.lwa[slot] = c })
}

// SetSigningKey stores the JWT signing key of slot (an *ecdsa.PrivateKey,
// *rsa.PrivateKey or ed25519.PrivateKey).
func (s *Store) SetSigningKey(ctx context.Context, slot int, key crypto.Signer) error {
	return s.set(ctx, true, Change{KindSigningKey, slot}, func(n *snapshot) { n.keys[slot] = key })
}

// SetClientCert stores the TLS client certificate (with its key) of slot.
func (s *Store) SetClientCert(ctx context.Context, slot int, cert *tls.Certificate) error {
	return s.set(ctx, true, Change{KindClientCert, slot}, func(n *snapshot) { n.certs[slot] = cert })
}

// SetCredentials stores the SigV4 credential provider of slot, wrapped in
// aws.NewCredentialsCache unless it already is one (nil clears the slot).
func (s *Store) SetCredentials(ctx context.Context, slot int, p aws.CredentialsProvider) error {
	if p != nil {
		if _, ok := p.(*aws.CredentialsCache); !ok {
			p = aws.NewCredentialsCache(p)
		}
	}
	return s.set(ctx, true, Change{KindCredentials, slot}, func(n *snapshot) { n.creds[slot] = p })
}

// SetDevice stores the device identity.
func (s *Store) SetDevice(ctx context.Context, d Device) error {
	return s.set(ctx, true, Change{KindDevice, 0}, func(n *snapshot) { n.device = d })
}

func inRange(slot int) bool { return slot >= 0 && slot < Slots }

// Token returns the token in slot (zero when unset or out of range).
func (s *Store) Token(slot int) Token {
	if !inRange(slot) {
		return Token{}
	}
	return s.snap.Load().tokens[slot]
}

// LWA returns the LWA refresh credentials of slot.
func (s *Store) LWA(slot int) LWACredentials {
	if !inRange(slot) {
		return LWACredentials{}
	}
	return s.snap.Load().lwa[slot]
}

// SigningKey returns the JWT signing key of slot (nil: none).
func (s *Store) SigningKey(slot int) crypto.Signer {
	if !inRange(slot) {
		return nil
	}
	return s.snap.Load().keys[slot]
}

// ClientCert returns the TLS client certificate of slot (nil: none).
func (s *Store) ClientCert(slot int) *tls.Certificate {
	if !inRange(slot) {
		return nil
	}
	return s.snap.Load().certs[slot]
}

// CredentialsProvider returns the SigV4 provider of slot (nil: none).
func (s *Store) CredentialsProvider(slot int) aws.CredentialsProvider {
	if !inRange(slot) {
		return nil
	}
	return s.snap.Load().creds[slot]
}

// Credentials retrieves the SigV4 credentials of slot through its cache
// (which refreshes them when they expire).
func (s *Store) Credentials(ctx context.Context, slot int) (aws.Credentials, error) {
	p := s.CredentialsProvider(slot)
	if p == nil {
		return aws.Credentials{}, fmt.Errorf("%w: no SigV4 credentials in slot %d", errNoCredentials, slot)
	}
	c, err := p.Retrieve(ctx)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("ss: auth: SigV4 credentials of slot %d: %w", slot, err)
	}
	return c, nil
}

// Device returns the device identity.
func (s *Store) Device() Device { return s.snap.Load().device }
