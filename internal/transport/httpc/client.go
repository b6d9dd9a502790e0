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
	txnStart time.Time     // perf streams only (startTxn)
	txnResp  time.Duration // perf streams only (endTxn)
	status   int
	h1req    http.Request // the request an h1 response is read for (readH1Response)
	pings    pinger       // deliver's keep-alive pings
}

// startTxn and endTxn time the transaction's request to its response
// headers for the perf report, read only for a streamtype with perf set:
// other streams skip the clock reads (time.Now is ~200 ns on this
// project's VMs).
func (r *run) startTxn() {
	if r.a.Type.Perf {
		r.txnStart = time.Now()
	}
}

func (r *run) endTxn() {
	if r.a.Type.Perf {
		r.txnResp = time.Since(r.txnStart)
	}
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

// exchange is a response whose body belongs to the run, with what ends it.
// Its limits (response headers, body idle) and its release cost no
// goroutine, closure or context per transaction beyond what the protocol
// needs: h1 uses the connection's deadlines, h2/h3 one timer that cancels
// the request's context (PERFORMANCE.md "h1/h2/h3 GET rate"). An exchange
// is used by the run's goroutine only (its ping goroutine reads ctx and
// ping).
type exchange struct {
	resp *http.Response
	// ctx is the request's context (h2/h3); for h1 the attempt's.
	ctx context.Context
	// ping sends a protocol keep-alive on the connection (h2 PING) and
	// returns when it is answered; nil when the protocol has none.
	ping func(ctx context.Context) error
	// bodyIdle is the body idle limit, 0 for none.
	bodyIdle time.Duration

	h1 *h1Conn // h1: the connection and its deadlines

	t     *timers // h2/h3: the request's limits (&limits)
	pool  *connPool
	entry *poolEntry // h2/h3: the shared connection, released by close

	limits  timers // h2/h3: what t points to, in the same allocation
	bodyErr errBox // h2/h3: the request body source's error (bodyReader)

	closed bool
}

// close ends the exchange: stops its limits, closes the body, cancels the
// request and releases the connection. Idempotent.
func (ex *exchange) close() {
	if ex.closed {
		return
	}
	ex.closed = true
	if c := ex.h1; c != nil {
		c.close()
		ex.resp.Body.Close() // after the connection: nothing left to read
		c.release()
		return
	}
	ex.t.stop()
	ex.resp.Body.Close()
	ex.t.cancel(context.Canceled)
	ex.pool.release(ex.entry)
}

// armBody starts the body idle limit before a read; disarmBody stops it
// after, so that a Sink.Rx blocked by backpressure is not idle time.
func (ex *exchange) armBody() {
	if ex.bodyIdle <= 0 {
		return
	}
	if ex.h1 != nil {
		ex.h1.limit(ex.bodyIdle, errBodyTimeout, false)
		return
	}
	ex.t.arm(ex.bodyIdle, errBodyTimeout)
}

func (ex *exchange) disarmBody() {
	if ex.bodyIdle > 0 && ex.h1 == nil {
		ex.t.disarm()
	}
}

// readErr says why a body read failed: a limit that expired, or the cut
// of the attempt (its cause), around the I/O error.
func (ex *exchange) readErr(err error) error {
	if ex.h1 != nil {
		return ex.h1.why(ex.ctx, err)
	}
	if c := context.Cause(ex.ctx); c != nil && !errors.Is(c, context.Canceled) && !errors.Is(err, c) {
		return fmt.Errorf("%w (%v)", c, err)
	}
	return err
}

var (
	errHeaderTimeout = fmt.Errorf("%w: no response headers in time", ErrTimeout)
	errBodyTimeout   = fmt.Errorf("%w: response body idle", ErrTimeout)
)

// timers is the response-header and body-idle limits of one h2/h3
// request: one timer, armed for one limit at a time, that cancels the
// request's context with the limit as cause. The header limit is armed
// once the request body has been produced (by the round tripper's body
// writer, on a goroutine of its own), the body limit around each read.
//
// The timer is lazy: disarming only forgets the limit, and arming leaves a
// pending timer alone when it fires no later than the new limit is due.
// A firing before the armed limit is due sets the timer again for the
// rest, so a limit still fires when it is due, never earlier; a firing
// with nothing armed does nothing. An h2 GET thus costs one timer and its
// final Stop instead of an arm and a disarm per read (a Reset and a Stop
// with the lock cost about 0.5 µs here), and times are read from the
// monotonic clock only (PERFORMANCE.md "h1/h2/h3 GET rate", 2026-12-03
// h2pull).
type timers struct {
	mu      sync.Mutex
	cancel  context.CancelCauseFunc
	timer   *time.Timer
	base    time.Time     // when the timer was made; due and fireAt count from it
	limit   error         // what is armed; nil: disarmed
	due     time.Duration // when the armed limit is due
	fireAt  time.Duration // when the pending timer fires
	pending bool          // the timer is set and has not fired yet
	hdrTime time.Duration
	hdrDone bool // the header limit was armed, or the headers arrived
	stopped bool
	unhook  func() bool // unregisters the cut hook (transport.AfterCut)
}

// arm starts the limit, due in d.
func (t *timers) arm(d time.Duration, limit error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if t.timer == nil {
		t.base = time.Now()
		t.limit, t.due, t.fireAt, t.pending = limit, d, d, true
		t.timer = time.AfterFunc(d, t.fire)
		return
	}
	t.limit, t.due = limit, time.Since(t.base)+d
	if !t.pending || t.fireAt > t.due {
		t.fireAt, t.pending = t.due, true
		t.timer.Reset(d)
	}
}

// disarm forgets the armed limit; the timer, if pending, fires for
// nothing (or for a limit armed by then).
func (t *timers) disarm() {
	t.mu.Lock()
	t.limit = nil
	t.mu.Unlock()
}

// fire cancels the request with the armed limit once it is due; before
// that it sets the timer again for the rest.
func (t *timers) fire() {
	t.mu.Lock()
	t.pending = false
	limit := t.limit
	if limit == nil || t.stopped {
		t.mu.Unlock()
		return
	}
	if rest := t.due - time.Since(t.base); rest > 0 {
		t.fireAt, t.pending = t.due, true
		t.timer.Reset(rest)
		t.mu.Unlock()
		return
	}
	cancel := t.cancel
	t.mu.Unlock()
	cancel(limit)
}

// armHeader starts the response-header limit (once the request is sent).
func (t *timers) armHeader() {
	t.mu.Lock()
	done := t.hdrDone
	t.hdrDone = true
	t.mu.Unlock()
	if !done {
		t.arm(t.hdrTime, errHeaderTimeout)
	}
}

// headersArrived stops the header limit.
func (t *timers) headersArrived() {
	t.mu.Lock()
	t.hdrDone = true
	t.mu.Unlock()
	t.disarm()
}

func (t *timers) stop() {
	t.mu.Lock()
	t.stopped = true
	t.limit = nil
	if t.timer != nil {
		t.timer.Stop()
	}
	t.mu.Unlock()
	t.unhook()
}

// newRequestCtx returns the context of one h2/h3 request, its limits set
// up in t;
// the header limit is armed when the body source ends (or now, without
// body). The context is not registered in the attempt's: a cut of the
// attempt cancels it through the sink (transport.AfterCut), with the
// attempt's cause.
func (r *run) newRequestCtx(ctx context.Context, req *outRequest, t *timers) context.Context {
	rctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	t.cancel, t.hdrTime = cancel, r.env.HeaderTimeout
	t.unhook = transport.AfterCut(ctx, r.sink, func() { cancel(context.Cause(ctx)) })
	if req.body == nil {
		t.armHeader()
	} else {
		setOnEnd(req.body.src, t.armHeader)
	}
	return rctx
}

func setOnEnd(src bodySource, f func()) {
	switch s := src.(type) {
	case *txBody:
		s.onEnd = f
	case *bytesBody:
		s.onEnd = f
	}
}

// causeOf turns a cancelled request context into its limit's or cut's
// error.
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

// finishExchange wires the body idle limit and the release of an h2/h3
// response obtained under rctx.
func (r *run) finishExchange(ex *exchange, rctx context.Context, resp *http.Response, pool *connPool, e *poolEntry) {
	ex.limits.headersArrived()
	r.endTxn()
	r.status = resp.StatusCode
	ex.resp, ex.ctx, ex.bodyIdle, ex.t, ex.pool, ex.entry = resp, rctx, r.bodyIdle(), &ex.limits, pool, e
}

// bodyIdle is the body idle limit of the attempt, 0 for none.
func (r *run) bodyIdle() time.Duration {
	if r.a.Type.LongPoll {
		return 0
	}
	return r.env.BodyIdleTimeout
}
