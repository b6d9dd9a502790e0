package httpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// maxRedirects is the largest number of redirects followed for one request.
const maxRedirects = 10

// Client is the h1, h2 or h3 client protocol adapter. One Client exists per
// protocol per runtime; it is safe for concurrent use. The h2 and h3
// adapters keep shared connections, released by Close.
type Client struct {
	proto  policy.Protocol
	env    *transport.Env
	h2     *h2Pool
	h3     *h3Pool
	closed atomic.Bool
}

var _ transport.Protocol = (*Client)(nil)

// New returns the client adapter for proto (policy.H1, H2 or H3). env
// supplies the time limits and the shared-connection idle time; nil uses
// the defaults. Each attempt's own Attempt.Env is used for everything else
// when set.
func New(proto policy.Protocol, env *transport.Env) *Client {
	if env == nil {
		env = transport.Env{}.Defaults()
	} else {
		env = env.Defaults()
	}
	c := &Client{proto: proto, env: env}
	switch proto {
	case policy.H2:
		c.h2 = newH2Pool(env)
	case policy.H3:
		c.h3 = newH3Pool(env)
	case policy.H1:
	default:
		panic(fmt.Sprintf("httpc: protocol %v is not an HTTP client protocol", proto))
	}
	return c
}

// NewH1 returns the HTTP/1.1 client adapter (docs/streams.md §11.2).
func NewH1(env *transport.Env) transport.Protocol { return New(policy.H1, env) }

// NewH2 returns the HTTP/2 client adapter (docs/streams.md §11.3).
func NewH2(env *transport.Env) transport.Protocol { return New(policy.H2, env) }

// NewH3 returns the HTTP/3 client adapter (docs/streams.md §11.4).
func NewH3(env *transport.Env) transport.Protocol { return New(policy.H3, env) }

// Close closes the shared connections; later Runs fail with ErrClosed.
// It is idempotent.
func (c *Client) Close(ctx context.Context) error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.h2 != nil {
		c.h2.close()
	}
	if c.h3 != nil {
		c.h3.close()
	}
	return nil
}

// run is the state of one Run call.
type run struct {
	c    *Client
	a    *transport.Attempt
	env  *transport.Env
	sink transport.Sink
	log  *slog.Logger

	timing   transport.Timing
	txnStart time.Time
	txnResp  time.Duration
	status   int
}

// Run performs one HTTP transaction for the attempt a (transport.Protocol).
func (c *Client) Run(ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
	env := a.Env
	if env == nil {
		env = c.env
	}
	r := &run{c: c, a: a, env: env, sink: sink, log: sink.Logger()}
	var res transport.Result
	if c.closed.Load() {
		res = transport.Result{Err: ErrClosed}
	} else {
		res = r.do(ctx)
	}
	if res.Err != nil {
		r.log.Debug("ss: http attempt ended", "stream", a.StreamID, "protocol", c.proto.String(), "err", res.Err)
	}
	if a.Type.Perf {
		_ = sink.Rx(ctx, transport.PerfReport(&r.timing, r.txnResp, r.status), event.SOM|event.EOM|event.PerfJSON)
	}
	return res
}

func fail(err error) transport.Result { return transport.Result{Err: err} }

func (r *run) do(ctx context.Context) transport.Result {
	a, st := r.a, r.a.Type
	ep, err := transport.ResolveEndpoint(a)
	if err != nil {
		return fail(err)
	}
	method := st.HTTPMethod
	if method == "" {
		method = http.MethodGet
	}
	plan, err := r.planBody(ctx, method)
	if err != nil {
		return fail(err)
	}
	for hops := 0; ; hops++ {
		req := &outRequest{method: method, ep: ep, host: ep.HostHeader(), body: plan}
		if err := r.buildHeaders(ctx, req); err != nil {
			return fail(err)
		}
		ex, err := r.exchange(ctx, req)
		if err != nil {
			return fail(err)
		}
		resp := ex.resp
		r.storeCookies(req, resp)
		code := resp.StatusCode
		if code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests {
			ex.close()
			return transport.Result{Err: &StatusError{Code: code, Status: resp.Status}, RetryAfter: retryAfter(resp.Header, time.Now())}
		}
		loc := resp.Header.Get("Location")
		if code >= 300 && code < 400 && loc != "" {
			ex.close()
			switch {
			case st.HTTPFailRedirect:
				return fail(&redirectError{code: code, reason: "refused by http_fail_redirect"})
			case !st.AllowRedirects:
				return fail(&redirectError{code: code, reason: "allow_redirects is not set"})
			case hops >= maxRedirects:
				return fail(&redirectError{code: code, reason: "more than 10 redirects"})
			}
			nep, err := redirectTarget(req, loc)
			if err != nil {
				return fail(err)
			}
			ep = nep
			if code != http.StatusTemporaryRedirect && code != http.StatusPermanentRedirect {
				if !strings.EqualFold(method, http.MethodHead) {
					method = http.MethodGet
				}
				plan = nil
			} else if plan != nil {
				bb, ok := plan.src.(*bytesBody)
				if !ok {
					return fail(&redirectError{code: code, reason: "request body cannot be resent"})
				}
				p := *plan
				p.src = &bytesBody{b: bb.b}
				plan = &p
			}
			continue
		}
		return r.deliver(ctx, ex)
	}
}

// baseURL is the URL redirects are resolved against.
func baseURL(req *outRequest) *url.URL {
	if u, err := url.Parse(scheme(req.ep) + "://" + req.host + req.ep.Path); err == nil {
		return u
	}
	return requestURL(req.ep, req.host)
}

func redirectTarget(req *outRequest, loc string) (*transport.Endpoint, error) {
	base := baseURL(req)
	u, err := base.Parse(loc)
	if err != nil {
		return nil, &redirectError{reason: "bad Location: " + err.Error()}
	}
	if strings.EqualFold(u.Scheme, base.Scheme) && strings.EqualFold(u.Host, base.Host) {
		ep := *req.ep
		ep.Path = transport.NormalizePath(u.RequestURI())
		return &ep, nil
	}
	return endpointFromURL(u)
}

// exchange is a response whose body belongs to the run, with what closes it.
type exchange struct {
	resp *http.Response
	// close ends the exchange: stops its timers, closes the body, cancels
	// the request and releases the connection. Idempotent.
	close func()
	// cause reports why the request context was cancelled, if it was.
	cause func() error
	// arm starts the body idle timer before a read and disarm stops it
	// after (so a Sink.Rx blocked by backpressure is not idle time); nil
	// when there is no limit.
	arm, disarm func()
	// ctx is the request's context.
	ctx context.Context
	// ping sends a protocol keep-alive on the connection (h2 PING) and
	// returns when it is answered; nil when the protocol has none.
	ping func(ctx context.Context) error
}

// timers handles the response-header and body-idle limits of one request
// by cancelling its context.
type timers struct {
	mu      sync.Mutex
	cancel  context.CancelCauseFunc
	hdr     *time.Timer
	body    *time.Timer
	hdrTime time.Duration
	stopped bool
}

var (
	errHeaderTimeout = fmt.Errorf("%w: no response headers in time", ErrTimeout)
	errBodyTimeout   = fmt.Errorf("%w: response body idle", ErrTimeout)
)

// armHeader starts the response-header limit (once the request is sent).
func (t *timers) armHeader() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped || t.hdr != nil {
		return
	}
	t.hdr = time.AfterFunc(t.hdrTime, func() { t.cancel(errHeaderTimeout) })
}

// headersArrived stops the header limit.
func (t *timers) headersArrived() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	if t.hdr != nil {
		t.hdr.Stop()
	}
}

func (t *timers) stop() {
	t.mu.Lock()
	t.stopped = true
	if t.hdr != nil {
		t.hdr.Stop()
	}
	if t.body != nil {
		t.body.Stop()
	}
	t.mu.Unlock()
}

// newRequestCtx returns the context of one request with its timers; the
// header timer is armed when the body source ends (or now, without body).
func (r *run) newRequestCtx(ctx context.Context, req *outRequest) (context.Context, *timers) {
	rctx, cancel := context.WithCancelCause(ctx)
	t := &timers{cancel: cancel, hdrTime: r.env.HeaderTimeout}
	if req.body == nil {
		t.armHeader()
	} else {
		setOnEnd(req.body.src, t.armHeader)
	}
	return rctx, t
}

func setOnEnd(src bodySource, f func()) {
	switch s := src.(type) {
	case *txBody:
		s.onEnd = f
	case *bytesBody:
		s.onEnd = f
	}
}

// causeOf turns a cancelled request context into its timer error.
func causeOf(rctx context.Context, err error) error {
	if c := context.Cause(rctx); c != nil && !errors.Is(c, context.Canceled) && !errors.Is(err, c) {
		return fmt.Errorf("%w (%v)", c, err)
	}
	return err
}

func (r *run) exchange(ctx context.Context, req *outRequest) (*exchange, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	switch r.c.proto {
	case policy.H2:
		return r.exchangeH2(ctx, req)
	case policy.H3:
		return r.exchangeH3(ctx, req)
	default:
		return r.exchangeH1(ctx, req, nil)
	}
}

// finishExchange wires the body idle limit and cleanup for a response
// obtained under rctx.
func (r *run) finishExchange(rctx context.Context, t *timers, resp *http.Response, release func()) *exchange {
	t.headersArrived()
	r.txnResp = time.Since(r.txnStart)
	r.status = resp.StatusCode
	ex := &exchange{resp: resp, ctx: rctx}
	if d := r.env.BodyIdleTimeout; d > 0 && !r.a.Type.LongPoll {
		t.mu.Lock()
		t.body = time.AfterFunc(d, func() { t.cancel(errBodyTimeout) })
		t.body.Stop()
		t.mu.Unlock()
		ex.arm = func() { t.body.Reset(d) }
		ex.disarm = func() { t.body.Stop() }
	}
	var once sync.Once
	ex.close = func() {
		once.Do(func() {
			t.stop()
			resp.Body.Close()
			t.cancel(context.Canceled)
			if release != nil {
				release()
			}
		})
	}
	ex.cause = func() error { return context.Cause(rctx) }
	return ex
}
