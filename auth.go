package ss

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/securestreams/ss/auth"
	iauth "github.com/securestreams/ss/internal/auth"
	"github.com/securestreams/ss/internal/stream"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// AuthConfig configures the token providers of the policy's auth schemes
// (docs/auth.md).
type AuthConfig struct {
	// JWT holds the options of jwt schemes by auth[] name: key or key file,
	// alg, claims, lifetime. A jwt scheme missing here signs with the key in
	// its signing-key slot and uses the device serial as subject.
	JWT map[string]auth.JWT
	// Refresh tunes every refresher (zero fields: defaults, refresh at
	// 90 % of the lifetime).
	Refresh auth.Tuning
}

// ErrProxiedAuth is returned by Refresher on a proxied runtime: the proxy
// holds the credentials and refreshes the tokens (ssproxy -blobs).
var ErrProxiedAuth = errors.New("ss: a proxied runtime has no credential store; the proxy holds the credentials (ssproxy -blobs)")

// ErrRefreshStream is wrapped when an LWA refresh through the scheme's
// auth[].streamtype does not end in a success.
var ErrRefreshStream = errors.New("ss: auth refresh stream failed")

// authPart is the runtime's share of package auth: the blob store, and one
// refresher per token scheme that a stream has used.
type authPart struct {
	store *iauth.Store
	cfg   AuthConfig
	rt    *Runtime

	mu         sync.Mutex
	refreshers map[string]*iauth.Refresher
	closed     bool
}

// initAuth starts the blob store in the runtime's actor system and wires
// the transports' credential lookups to it.
func (rt *Runtime) initAuth(cfg *Config) error {
	st, err := iauth.NewStore(rt.actors, cfg.Logger)
	if err != nil {
		return err
	}
	rt.auth = &authPart{store: st, cfg: cfg.Auth, rt: rt, refreshers: map[string]*iauth.Refresher{}}
	env := rt.env
	env.Token = func(slot int) []byte { return st.Token(slot).Value }
	env.ClientCert = func(slot int) (*tls.Certificate, error) { return st.ClientCert(slot), nil }
	env.AWSCredentials = func(ctx context.Context, slot int) (aws.Credentials, error) {
		return st.Credentials(ctx, slot)
	}
	env.DeviceID = func() transport.Device { return transport.Device(st.Device()) }
	if cfg.Device != (auth.Device{}) {
		if err := st.SetDevice(context.Background(), cfg.Device); err != nil {
			return err
		}
	}
	return nil
}

// Blobs returns the runtime's credential store: set tokens, LWA refresh
// credentials, JWT keys, client certificates, SigV4 credential providers
// and the device identity there (docs/auth.md). Nil for a proxied runtime:
// there the proxy holds the credentials (ssproxy -blobs).
func (rt *Runtime) Blobs() auth.Store {
	if rt.auth == nil {
		return nil
	}
	return rt.auth.store
}

// Refresher returns the refresher of the named lwa or jwt auth scheme of
// the installed policy, starting it if no stream has used it yet. A
// proxied runtime has none (ErrProxiedAuth).
func (rt *Runtime) Refresher(scheme string) (auth.Refresher, error) {
	if rt.auth == nil {
		return nil, ErrProxiedAuth
	}
	for _, a := range rt.pol.Load().Auth {
		if a.Name == scheme {
			r, err := rt.auth.refresher(a)
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return r, nil
		}
	}
	return nil, fmt.Errorf("ss: no auth scheme %q in the policy", scheme)
}

// authGate is the gate of streams whose use_auth names an lwa or jwt
// scheme: they wait for a valid token (docs/auth.md).
func (rt *Runtime) authGate(st *policy.Streamtype) stream.Gate {
	a := st.UseAuth
	if rt.auth == nil || a == nil || (a.Type != policy.AuthLWA && a.Type != policy.AuthJWT) {
		return nil
	}
	r, err := rt.auth.refresher(a)
	if err != nil {
		return closedGate{err}
	}
	return r
}

func (p *authPart) refresher(a *policy.Auth) (*iauth.Refresher, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if r, ok := p.refreshers[a.Name]; ok {
		return r, nil
	}
	slot := int(a.Blob)
	var prov iauth.Provider
	switch a.Type {
	case policy.AuthLWA:
		l := &iauth.LWA{Store: p.store, Slot: slot}
		if a.StreamtypeName != "" {
			l.Post = p.rt.postThrough(a.StreamtypeName)
		}
		prov = l
	case policy.AuthJWT:
		prov = &iauth.JWT{JWT: p.cfg.JWT[a.Name], Store: p.store, Slot: slot}
	default:
		return nil, fmt.Errorf("ss: auth scheme %q (type %q) has no token provider", a.Name, a.TypeName)
	}
	r, err := iauth.NewRefresher(iauth.RefresherConfig{Scheme: a.Name, Slot: slot, Store: p.store, Provider: prov,
		Actors: p.rt.actors, Logger: p.rt.env.Logger, Tuning: p.cfg.Refresh})
	if err != nil {
		return nil, err
	}
	p.refreshers[a.Name] = r
	return r, nil
}

// close stops the refreshers (cancelling refreshes in flight).
func (p *authPart) close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	rs := make([]*iauth.Refresher, 0, len(p.refreshers))
	for _, r := range p.refreshers {
		rs = append(rs, r)
	}
	p.mu.Unlock()
	var errs []error
	for _, r := range rs {
		errs = append(errs, r.Close(ctx))
	}
	return errors.Join(errs...)
}

// closedGate keeps attempts from starting, reporting AUTH_FAILED with err.
type closedGate struct{ err error }

func (g closedGate) Check() (bool, State, error) { return false, AuthFailed, g.err }
func (g closedGate) Watch(func()) (stop func())  { return func() {} }

// postThrough returns the LWA PostFunc that sends the form as the body of
// one stream of streamtype (policy auth[].streamtype: endpoint, TLS trust,
// retry all come from the policy) and returns the response body. A
// QOS_NACK_REMOTE (non-success status), ALL_RETRIES_FAILED or TIMEOUT is
// an error wrapping ErrRefreshStream, with the body received.
func (rt *Runtime) postThrough(streamtype string) iauth.PostFunc {
	return func(ctx context.Context, form []byte) ([]byte, error) {
		s, err := rt.Create(ctx, streamtype)
		if err != nil {
			return nil, fmt.Errorf("%w: streamtype %q: %w", ErrRefreshStream, streamtype, err)
		}
		defer func() {
			go func() {
				for range s.Events() {
				}
			}()
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.Destroy(dctx)
			cancel()
		}()
		if err := s.SetTxLen(int64(len(form))); err != nil {
			return nil, fmt.Errorf("%w: streamtype %q: %w", ErrRefreshStream, streamtype, err)
		}
		if err := s.Send(ctx, form); err != nil {
			return nil, fmt.Errorf("%w: streamtype %q: %w", ErrRefreshStream, streamtype, err)
		}
		var body []byte
		for {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: streamtype %q: %w", ErrRefreshStream, streamtype, ctx.Err())
			case ev, ok := <-s.Events():
				if !ok {
					return body, fmt.Errorf("%w: streamtype %q: the stream ended", ErrRefreshStream, streamtype)
				}
				if ev.Kind == PayloadEvent {
					if len(body)+len(ev.Payload) > iauth.MaxTokenResponse {
						return nil, fmt.Errorf("%w: streamtype %q: response over %d bytes", ErrRefreshStream, streamtype, iauth.MaxTokenResponse)
					}
					body = append(body, ev.Payload...)
					continue
				}
				switch ev.State {
				case Connecting:
					body = body[:0] // a new attempt: forget a partial answer
				case QoSAckRemote:
					return body, nil
				case QoSNackRemote, AllRetriesFailed, Timeout:
					return body, fmt.Errorf("%w: streamtype %q: %s: %w", ErrRefreshStream, streamtype, ev.State, errOrNil(ev.Err))
				}
			}
		}
	}
}

var errNoCause = errors.New("no cause reported")

func errOrNil(err error) error {
	if err == nil {
		return errNoCause
	}
	return err
}
