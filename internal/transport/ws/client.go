package ws

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// Handshake errors.
var (
	// ErrHandshake is wrapped when the server does not accept the upgrade
	// (status other than 101, bad accept key, bad response).
	ErrHandshake = errors.New("ss: ws: handshake refused")
	// ErrSubprotocol is wrapped when the server selected a subprotocol other
	// than the one offered (ws_subprotocol), or one when none was offered.
	ErrSubprotocol = errors.New("ss: ws: subprotocol not accepted")
)

// New returns the WebSocket client Protocol. env is used when an Attempt
// carries no Env of its own.
func New(env *transport.Env) transport.Protocol {
	if env == nil {
		env = transport.Env{}.Defaults()
	}
	return &client{env: env}
}

type client struct {
	env *transport.Env
}

// Close releases nothing: connections are not shared.
func (*client) Close(context.Context) error { return nil }

// Run performs the handshake of docs/streams.md §11.6, reports CONNECTED and runs
// the connection with RunConn; with perf it delivers the report last.
func (p *client) Run(ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
	if a.Env == nil {
		b := *a
		b.Env = p.env
		a = &b
	}
	var t transport.Timing
	res := p.run(ctx, a, sink, &t)
	if a.Type.Perf {
		_ = sink.Rx(ctx, transport.PerfReport(&t, 0, -1), event.SOM|event.EOM|event.PerfJSON)
	}
	return res
}

func (p *client) run(ctx context.Context, a *transport.Attempt, sink transport.Sink, t *transport.Timing) transport.Result {
	c, err := dial(ctx, a, sink, t)
	if err != nil {
		sink.Logger().Debug("ss: ws: attempt failed", "stream", a.StreamID, "err", err)
		return transport.Result{Err: err}
	}
	sink.State(event.Connected, 0)
	return RunConn(ctx, c, a, sink)
}

// dial connects and performs the handshake; response headers are captured
// into metadata before it returns.
func dial(ctx context.Context, a *transport.Attempt, sink transport.Sink, t *transport.Timing) (*websocket.Conn, error) {
	st, env := a.Type, a.Env
	ep, err := transport.ResolveEndpoint(a)
	if err != nil {
		return nil, err
	}
	if env.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, env.ConnectTimeout)
		defer cancel()
	}

	host := ep.HostHeader()
	u := "ws://" + host + ep.Path
	jarURL, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("%w: path %q: %w", transport.ErrEndpoint, ep.Path, err)
	}
	if ep.TLS {
		jarURL.Scheme = "https"
	} else {
		jarURL.Scheme = "http"
	}
	hdr := requestHeader(a, sink)
	if transport.UsesSigV4(st) {
		if err := signV4(ctx, a, ep, host, hdr); err != nil {
			return nil, err
		}
	}
	jar := env.Cookies
	if !st.HTTPCookies {
		jar = nil
	}
	if jar != nil {
		if cs := jar.Cookies(jarURL); len(cs) > 0 {
			parts := make([]string, len(cs))
			for i, ck := range cs {
				parts[i] = ck.Name + "=" + ck.Value
			}
			hdr["Cookie"] = append(hdr["Cookie"], strings.Join(parts, "; "))
		}
	}

	if err := checkHandshake(st, ep.Path, hdr); err != nil {
		return nil, err
	}

	// gorilla blocks in the handshake until the conn deadline (set from the
	// ctx deadline); cancellation must also unblock it.
	var stopCancel func() bool
	d := websocket.Dialer{
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			// TLS here (not in gorilla): the policy trust store, ALPN
			// http/1.1, ErrTLS and TLS timing come from transport.Dial.
			conn, err := transport.Dial(ctx, a, ep, transport.DialOptions{ALPN: []string{"http/1.1"}}, t)
			if err != nil {
				return nil, err
			}
			stopCancel = context.AfterFunc(ctx, func() { _ = conn.Close() })
			return conn, nil
		},
		WriteBufferPool: unusedPool{}, // frames are written by frameWriter
	}
	if st.WSSubprotocol != "" {
		d.Subprotocols = []string{st.WSSubprotocol}
	}
	c, resp, err := d.DialContext(ctx, u, hdr)
	if stopCancel != nil && !stopCancel() && err == nil {
		// ctx ended as the handshake completed: the conn is closed.
		c.Close()
		return nil, ctx.Err()
	}
	if resp != nil {
		if jar != nil {
			if rc := resp.Cookies(); len(rc) > 0 {
				jar.SetCookies(jarURL, rc)
			}
		}
		captureHeaders(a, sink, resp.Header)
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("%w: %w", err, ctx.Err())
		case errors.Is(err, os.ErrDeadlineExceeded):
			// gorilla's conn deadline is the ctx deadline; it may fire first.
			err = fmt.Errorf("%w: %w", err, context.DeadlineExceeded)
		}
		if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
			return nil, fmt.Errorf("%w: %s answered %d %s (expected 101 with a valid accept key): %w", ErrHandshake, ep.Address, resp.StatusCode, http.StatusText(resp.StatusCode),
				&transport.StatusError{Code: resp.StatusCode, Status: resp.Status})
		}
		return nil, fmt.Errorf("ss: ws: connecting to %s: %w", ep.Address, err)
	}
	if got := c.Subprotocol(); got != st.WSSubprotocol {
		c.Close()
		return nil, fmt.Errorf("%w: offered %q, server selected %q", ErrSubprotocol, st.WSSubprotocol, got)
	}
	return c, nil
}

// reserved headers are written by gorilla; metadata may not replace them.
func reserved(name string) bool {
	switch strings.ToLower(name) {
	case "host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
		"sec-websocket-extensions", "sec-websocket-protocol":
		return true
	}
	return false
}

// requestHeader builds the §11.2.2 header pipeline for the handshake: token
// auth, device blob headers, mapped metadata, direct_proto_str extras (SigV4
// and cookies are added by dial). Names
// are written as given (net/http sorts them by name). No User-Agent unless
// mapped.
func requestHeader(a *transport.Attempt, sink transport.Sink) http.Header {
	st, env := a.Type, a.Env
	h := http.Header{"User-Agent": {""}} // "" suppresses net/http's default
	add := func(name, value string) {
		name = strings.TrimSuffix(name, ":")
		if reserved(name) {
			sink.Logger().Warn("ss: ws: handshake header not sent (set by the handshake)", "stream", a.StreamID, "header", name)
			return
		}
		if strings.EqualFold(name, "User-Agent") {
			name = "User-Agent"
			if h[name][0] == "" {
				h[name] = nil
			}
		}
		h[name] = append(h[name], value)
	}
	if st.HTTPAuthHeader != "" {
		slot := 0
		if st.UseAuth != nil && !transport.UsesSigV4(st) {
			slot = int(st.UseAuth.Blob)
		}
		var tok []byte
		if env.Token != nil {
			tok = env.Token(slot)
		}
		v := string(tok)
		if st.AuthHexify {
			v = hex.EncodeToString(tok)
		}
		add(st.HTTPAuthHeader, st.HTTPAuthPreamble+v)
	}
	dev := env.CurrentDevice()
	if st.HTTPDSNHeader != "" {
		add(st.HTTPDSNHeader, dev.Serial)
	}
	if st.HTTPFWVHeader != "" {
		add(st.HTTPFWVHeader, dev.FirmwareVersion)
	}
	if st.HTTPDevtypeHeader != "" {
		add(st.HTTPDevtypeHeader, dev.Type)
	}
	for i, m := range st.Metadata {
		if m.Header == "" || i >= len(a.Metadata) || !a.Metadata[i].Set {
			continue
		}
		add(m.Header, a.Metadata[i].Value)
	}
	if st.DirectProtoStr {
		for name, v := range a.Extra {
			if n := strings.TrimSuffix(name, ":"); n != "" {
				add(n, v)
			}
		}
	}
	return h
}

// captureHeaders stores response headers into mapped metadata (first
// occurrence) and, with direct_proto_str, every header as "name:" (lower
// case).
func captureHeaders(a *transport.Attempt, sink transport.Sink, h http.Header) {
	st := a.Type
	for _, m := range st.Metadata {
		if m.Header == "" {
			continue
		}
		if vs := h.Values(m.Header); len(vs) > 0 {
			sink.SetMetadata(m.Name, vs[0])
		}
	}
	if st.DirectProtoStr {
		for k, vs := range h {
			if len(vs) > 0 {
				sink.SetMetadata(strings.ToLower(k)+":", vs[0])
			}
		}
	}
}

// unusedPool keeps gorilla from allocating a write buffer per connection:
// this package never calls gorilla's writer.
type unusedPool struct{}

func (unusedPool) Get() any  { return nil }
func (unusedPool) Put(x any) {}
