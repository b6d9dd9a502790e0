package httpc

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/securestreams/ss/internal/transport"
)

// h2Pool holds the shared HTTP/2 connections of one Client.
type h2Pool struct {
	t    *http2.Transport
	pool *connPool
}

func newH2Pool(env *transport.Env) *h2Pool {
	return &h2Pool{
		t: &http2.Transport{
			DisableCompression: true,
			// Validity keep-alive: PING a connection that has been silent.
			ReadIdleTimeout: 30 * time.Second,
			PingTimeout:     15 * time.Second,
		},
		pool: newConnPool(env.SharedIdleTimeout),
	}
}

func (p *h2Pool) close() { p.pool.close() }

type h2Conn struct {
	cc   *http2.ClientConn
	once sync.Once
}

func (c *h2Conn) usable() bool { return c.cc.CanTakeNewRequest() }
func (c *h2Conn) close()       { c.once.Do(func() { c.cc.Close() }) }

// h1Fallback carries a TLS connection whose ALPN did not select h2: the
// transaction runs as HTTP/1.1 on it and it is not shared.
type h1Fallback struct{ conn net.Conn }

func (e *h1Fallback) Error() string { return "ss: h2 not negotiated" }

// exchangeH2 runs req as one stream of the shared connection of its
// identity; without TLS, or when ALPN does not select h2, it runs as h1.
func (r *run) exchangeH2(ctx context.Context, req *outRequest) (*exchange, error) {
	ep := req.ep
	if !ep.TLS {
		return r.exchangeH1(ctx, req, nil)
	}
	p := r.c.h2
	e, reused, err := p.pool.get(ctx, identityKey(r.a, ep), func() (sharedConn, string, error) {
		dctx, cancel := transport.CutTimeout(ctx, r.sink, r.env.ConnectTimeout)
		defer cancel()
		conn, err := transport.Dial(dctx, r.a, ep, transport.DialOptions{ALPN: []string{"h2", "http/1.1"}}, &r.timing)
		if err != nil {
			return nil, "", err
		}
		if tc, ok := conn.(*tls.Conn); !ok || tc.ConnectionState().NegotiatedProtocol != "h2" {
			return nil, "", &h1Fallback{conn: conn}
		}
		cc, err := p.t.NewClientConn(conn)
		if err != nil {
			conn.Close()
			return nil, "", err
		}
		return &h2Conn{cc: cc}, r.timing.Peer, nil
	})
	if err != nil {
		var fb *h1Fallback
		if errors.As(err, &fb) {
			return r.exchangeH1(ctx, req, fb.conn)
		}
		return nil, err
	}
	cc := e.conn.(*h2Conn).cc
	ex, err := r.roundTripShared(ctx, req, p.pool, e, reused, cc.RoundTrip)
	if err != nil {
		return nil, err
	}
	ex.ping = cc.Ping
	return ex, nil
}

// roundTripShared runs req on the pooled connection e (h2 or h3) with rt,
// releasing e back to pool when the exchange ends or fails.
func (r *run) roundTripShared(ctx context.Context, req *outRequest, pool *connPool, e *poolEntry, reused bool, rt func(*http.Request) (*http.Response, error)) (*exchange, error) {
	if reused {
		r.timing.Peer = e.peer
	}
	// One allocation holds the exchange, its limits and the request
	// body's error box (PERFORMANCE.md "h1/h2/h3 GET rate", 2026-12-03 h2pull).
	ex := &exchange{}
	t := &ex.limits
	rctx := r.newRequestCtx(ctx, req, t)
	r.startTxn()
	resp, err := rt(httpRequest(rctx, req, &ex.bodyErr, t.cancel))
	if be := ex.bodyErr.get(); be != nil {
		if err == nil {
			resp.Body.Close()
		}
		err = be
	}
	if err != nil {
		err = causeOf(rctx, err)
		t.stop()
		t.cancel(nil)
		pool.release(e)
		return nil, err
	}
	r.finishExchange(ex, rctx, resp, pool, e)
	return ex, nil
}
