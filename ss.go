package ss

import (
	"context"
	"errors"
	"fmt"
	"github.com/securestreams/ss/proxy"
	"sync"
	"sync/atomic"

	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/evloop"
	iproxy "github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/internal/stream"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// Runtime holds a policy and runs streams. Create one per process (or per
// independent configuration) with New and end it with Close.
type Runtime struct {
	env    *transport.Env
	host   *stream.Host
	actors *actor.System
	// ownActors: the actor system is private (not Config.Actors).
	ownActors bool
	pol       atomic.Pointer[policy.Policy]
	proxy     *iproxy.Client // Config.Proxy: streams are fulfilled by an SS proxy
	sys       *system        // system streamtypes (system.go)
	auth      *authPart      // blob store and token refreshers (auth.go); nil when proxied

	mu      sync.Mutex
	clients map[policy.Protocol]transport.Protocol
	servers map[policy.Protocol]transport.ServerProtocol
	serving map[*Server]struct{}
	closed  bool
	backlog int // Config.AcceptBacklog
	// proxyLimits: Config.ProxyLimits, checked by New.
	proxyLimits proxy.ServerLimits
	poller      *evloop.Poller // Config.EventLoop: raw connections parked in it (nil: none)
	done        chan struct{}
	err         error
}

// Stats are runtime-wide counters.
type Stats struct {
	// IllegalTransitions counts state transitions the legal-transition table
	// forbids (a library bug; docs/streams.md §3.2). It should be 0.
	IllegalTransitions uint64
	// Streams is the number of live streams (client and accepted).
	Streams int
}

// New creates a runtime for cfg. ctx is not retained.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Policy == nil && cfg.Proxy == "" {
		return nil, ErrNoPolicy
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.ProxyLimits.Check(); err != nil {
		return nil, err
	}
	rt := &Runtime{
		env:     cfg.env(),
		clients: map[policy.Protocol]transport.Protocol{},
		servers: map[policy.Protocol]transport.ServerProtocol{},
		serving: map[*Server]struct{}{},
		done:    make(chan struct{}),
	}
	if err := rt.initProxy(&cfg); err != nil {
		return nil, err
	}
	rt.actors = cfg.Actors
	if rt.actors == nil {
		rt.ownActors = true
		rt.actors = actor.NewSystem(cfg.Logger)
	}
	// One actor system per runtime: the mqtt connection manager's actors
	// live beside the streams' (Config.Actors when the user gives one).
	rt.env.Actors = rt.actors
	if rt.proxy == nil {
		if err := rt.initAuth(&cfg); err != nil {
			return nil, err
		}
	}
	rt.host = stream.NewHost(rt.actors, rt.env)
	rt.host.Rand = cfg.Jitter
	rt.host.Traits = traitsOf
	rt.host.RxBudget, rt.host.TxBudget = cfg.RxBuffer, cfg.TxBuffer
	if cfg.EventLoop && rt.proxy == nil {
		rt.poller = newPoller(rt.env.Logger)
	}
	rt.backlog = cfg.AcceptBacklog
	rt.proxyLimits = cfg.ProxyLimits
	rt.pol.Store(cfg.Policy)
	rt.startSystem(&cfg)
	return rt, nil
}

// Policy returns the installed policy.
func (rt *Runtime) Policy() *policy.Policy { return rt.pol.Load() }

// SetPolicy installs p atomically (docs/streams.md §13.1). Streams created
// afterwards use it; existing streams keep the policy they were created with.
func (rt *Runtime) SetPolicy(p *policy.Policy) error {
	if err := rt.checkOpen(); err != nil {
		return err
	}
	if p == nil {
		return ErrNoPolicy
	}
	rt.pol.Store(p)
	return nil
}

// Stats returns the runtime's counters.
func (rt *Runtime) Stats() Stats {
	return Stats{IllegalTransitions: rt.host.IllegalTransitions(), Streams: rt.host.Streams()}
}

func (rt *Runtime) streamtype(name string) (*policy.Policy, *policy.Streamtype, error) {
	pol := rt.pol.Load()
	st := pol.Streamtype(name)
	if st == nil {
		return nil, nil, fmt.Errorf("%w: %q", ErrUnknownStreamtype, name)
	}
	return pol, st, nil
}

func (rt *Runtime) clientProtocol(p policy.Protocol) (transport.Protocol, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return nil, ErrClosed
	}
	if t, ok := rt.clients[p]; ok {
		return t, nil
	}
	mk, ok := clientProtocols[p]
	if !ok {
		return nil, fmt.Errorf("%w: %s (no client transport registered)", ErrUnsupportedProtocol, p)
	}
	t := mk(rt.env)
	rt.clients[p] = t
	return t, nil
}

func (rt *Runtime) serverProtocol(p policy.Protocol) (transport.ServerProtocol, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return nil, ErrClosed
	}
	if t, ok := rt.servers[p]; ok {
		return t, nil
	}
	mk, ok := serverProtocols[p]
	if !ok {
		return nil, fmt.Errorf("%w: %s (no server transport registered)", ErrUnsupportedProtocol, p)
	}
	t := mk(rt.env)
	rt.servers[p] = t
	return t, nil
}

func applyOptions(opts []Option) (createOptions, error) {
	var o createOptions
	for i, opt := range opts {
		if opt == nil {
			return o, fmt.Errorf("%w: option %d of %d is nil", ErrNilOption, i+1, len(opts))
		}
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// Create creates a client stream of the named streamtype (docs/streams.md §5.1).
// Its first event is CREATING; a nailed_up streamtype starts connecting at
// once, others wait for Send, RequestTx or Connect. It fails, with no
// events, when the streamtype is unknown, is a server streamtype, has no
// registered transport, or (mqtt) would share a broker connection that is
// open with different connection-level settings (an error wrapping
// ErrMismatch, naming both streamtypes and the policy key).
func (rt *Runtime) Create(ctx context.Context, streamtype string, opts ...Option) (*Stream, error) {
	if err := rt.checkOpen(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if rt.proxy != nil {
		return rt.createProxied(ctx, streamtype, opts)
	}
	cfg, err := rt.clientConfig(ctx, streamtype, opts)
	if err != nil {
		return nil, err
	}
	s, err := stream.New(rt.host, cfg)
	if err != nil {
		return nil, err
	}
	return &Stream{s: s}, nil
}

// clientConfig resolves a client streamtype and its transport.
func (rt *Runtime) clientConfig(ctx context.Context, streamtype string, opts []Option) (stream.Config, error) {
	if err := ctx.Err(); err != nil {
		return stream.Config{}, err
	}
	pol, st, err := rt.streamtype(streamtype)
	if err != nil {
		return stream.Config{}, err
	}
	if st.Server {
		return stream.Config{}, fmt.Errorf("%w: %q is a server streamtype: use Serve", ErrServerStreamtype, streamtype)
	}
	if st.LocalSink {
		return stream.Config{}, fmt.Errorf("%w: streamtype %q: local_sink streams are not supported", ErrUnsupportedProtocol, streamtype)
	}
	proto, err := rt.clientProtocol(st.Protocol)
	if err != nil {
		return stream.Config{}, fmt.Errorf("ss: streamtype %q: %w", streamtype, err)
	}
	o, err := applyOptions(opts)
	if err != nil {
		return stream.Config{}, err
	}
	cfg := stream.Config{Policy: pol, Type: st, Protocol: proto, Metadata: o.metadata, Framing: txFraming[st.Protocol],
		Gates: rt.gatesFor(st), CheckMetadata: metadataCheck(metadataChecks, st), Poller: rt.poller}
	if err := rt.checkCompatible(cfg); err != nil {
		return stream.Config{}, err
	}
	return cfg, nil
}

// compatibilityChecker is implemented by transports whose connections are
// shared between streams (mqtt: one broker connection per broker identity,
// docs/streams.md §12.2): it returns an error when a stream described by the
// attempt would join an open connection whose connection-level settings
// disagree with its own.
type compatibilityChecker interface {
	CheckCompatible(a *transport.Attempt) error
}

// checkCompatible fails Create early, with no stream and no events, when the
// transport says the stream cannot share the connection it would use (for
// mqtt an error wrapping ErrMismatch naming both streamtypes and the key).
func (rt *Runtime) checkCompatible(cfg stream.Config) error {
	cc, ok := cfg.Protocol.(compatibilityChecker)
	if !ok {
		return nil
	}
	md := make([]transport.MetadataValue, len(cfg.Type.Metadata))
	for _, m := range cfg.Metadata {
		if i := cfg.Type.MetadataIndex(m.Name); i >= 0 {
			md[i] = transport.MetadataValue{Value: m.Value, Set: true}
		}
	}
	return cc.CheckCompatible(&transport.Attempt{Policy: cfg.Policy, Type: cfg.Type, Metadata: md, Env: rt.env})
}

// CreateProps is Create for applications that supervise streams in their
// own actor system: it returns the stream (CREATING already queued) and the
// Props of its actor, which the application spawns exactly once, for
// example as the child of a supervising actor. The runtime must have been
// created with Config.Actors set to that same system (actor.Wrap). Until
// the Props are spawned the stream queues requests; an actor stopped by its
// parent ends the stream (DISCONNECTED if connected, DESTROYING). A proxied
// runtime (Config.Proxy) has no local stream actors: CreateProps returns
// ErrProxiedProps there.
func (rt *Runtime) CreateProps(ctx context.Context, streamtype string, opts ...Option) (*Stream, *actor.Props, error) {
	if err := rt.checkOpen(); err != nil {
		return nil, nil, err
	}
	if rt.proxy != nil {
		return nil, nil, ErrProxiedProps
	}
	if rt.ownActors {
		return nil, nil, ErrNoActorSystem
	}
	cfg, err := rt.clientConfig(ctx, streamtype, opts)
	if err != nil {
		return nil, nil, err
	}
	s, props, err := stream.NewProps(rt.host, cfg)
	if err != nil {
		return nil, nil, err
	}
	return &Stream{s: s}, props, nil
}

// Close destroys every server and stream and waits until their transports
// have stopped (or ctx is done: ctx bounds only that wait). Then it gives
// readers a moment (stream.CloseGrace) to take the events still queued,
// discards what is left undelivered (a stream whose events nobody reads,
// one left after breaking out of All) and closes every event channel: with
// context.Background() it returns within a second of the transports
// stopping, whether or not the application reads. It returns ctx.Err() when
// ctx ended the wait for transports. Idempotent: later calls wait for the
// first and return its result.
func (rt *Runtime) Close(ctx context.Context) error {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		select {
		case <-rt.done:
			return rt.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	rt.closed = true
	servers := make([]*Server, 0, len(rt.serving))
	for s := range rt.serving {
		servers = append(servers, s)
	}
	rt.mu.Unlock()
	rt.sys.stop()

	var errs []error
	for _, s := range servers {
		if err := s.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if rt.auth != nil {
		errs = append(errs, rt.auth.close(ctx))
	}
	if err := rt.host.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	if rt.poller != nil {
		rt.poller.Close() // after the streams: their parked connections have ended
	}
	rt.sys.wait()
	if rt.auth != nil {
		errs = append(errs, rt.auth.store.Close(ctx))
	}
	// The protocols close before the actor system: the mqtt connection
	// manager's actors run in it and Close waits for them.
	rt.mu.Lock()
	for _, t := range rt.clients {
		if err := t.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	rt.mu.Unlock()
	if rt.ownActors {
		// The streams' actors have stopped (host.Close waited for them) and
		// so have the protocols'; this shuts the private system down.
		if err := rt.actors.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	rt.err = errors.Join(errs...)
	close(rt.done)
	return rt.err
}

// checkOpen returns ErrClosed once Close has been called: every Runtime
// call after Close fails with it.
func (rt *Runtime) checkOpen() error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return ErrClosed
	}
	return nil
}

// Done is closed when Close has finished.
func (rt *Runtime) Done() <-chan struct{} { return rt.done }
