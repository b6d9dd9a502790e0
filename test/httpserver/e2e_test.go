// Package e2e_test runs h1/h2 server streams end to end: a real ss.Runtime
// serving a server streamtype (rt.Serve, srv.Accepted, Events), driven by
// real HTTP and websocket clients on loopback. It checks the exact event
// sequences of docs/streams.md §10.2.
package e2e_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.GoleakOptions()...)
}

const waitLimit = 5 * time.Second

// serverType returns a loopback server streamtype; meta entries are "name"
// or "name=header:".
func serverType(name string, proto policy.Protocol, meta ...string) *policy.Streamtype {
	st := &policy.Streamtype{Name: name, Protocol: proto, Server: true, Endpoint: "127.0.0.1", ClientCert: -1}
	for i, m := range meta {
		n, hdr, _ := strings.Cut(m, "=")
		st.Metadata = append(st.Metadata, &policy.MetadataItem{Name: n, Header: strings.TrimSuffix(hdr, ":"), HeaderRaw: hdr, Index: i})
	}
	return st
}

// serve starts a runtime with sts and serves the first; runtime and server
// are closed at cleanup, and the runtime must count no illegal transition.
func serve(t *testing.T, sts ...*policy.Streamtype) (*ss.Runtime, *ss.Server) {
	t.Helper()
	rt, err := ss.New(context.Background(), ss.Config{Policy: &policy.Policy{SchemaVersion: 1, Streamtypes: sts}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := rt.Serve(context.Background(), sts[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("server Close: %v", err)
		}
		if err := rt.Close(ctx); err != nil {
			t.Errorf("runtime Close: %v", err)
		}
		if n := rt.Stats().IllegalTransitions; n != 0 {
			t.Errorf("IllegalTransitions = %d, want 0", n)
		}
	})
	return rt, srv
}

func accepted(t *testing.T, srv *ss.Server) *recorder {
	t.Helper()
	select {
	case s := <-srv.Accepted():
		return &recorder{t: t, s: s}
	case <-time.After(waitLimit):
		t.Fatal("nothing accepted")
		return nil
	}
}

// recorder renders a stream's events: states by name, payload as
// rx(FLAGS,"data").
type recorder struct {
	t  *testing.T
	s  *ss.Stream
	ev []string
}

func render(ev ss.Event) string {
	if ev.Kind == ss.PayloadEvent {
		return fmt.Sprintf("rx(%s,%q)", ev.Flags, ev.Payload)
	}
	return ev.State.String()
}

// until reads events up to and including the first equal to want.
func (r *recorder) until(want string) {
	r.t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-r.s.Events():
			if !ok {
				r.t.Fatalf("channel closed waiting for %s; events: %q", want, r.ev)
			}
			r.ev = append(r.ev, render(ev))
			if r.ev[len(r.ev)-1] == want {
				return
			}
		case <-timer.C:
			r.t.Fatalf("timed out waiting for %s; events: %q", want, r.ev)
		}
	}
}

// end reads events until the channel closes and compares them all.
func (r *recorder) end(want ...string) {
	r.t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-r.s.Events():
			if !ok {
				if strings.Join(r.ev, " ") != strings.Join(want, " ") {
					r.t.Fatalf("events:\n got  %q\n want %q", r.ev, want)
				}
				return
			}
			r.ev = append(r.ev, render(ev))
		case <-timer.C:
			r.t.Fatalf("channel not closed; events: %q", r.ev)
		}
	}
}

func (r *recorder) meta(name, want string) {
	r.t.Helper()
	if v, ok := r.s.Metadata(name); !ok || v != want {
		r.t.Errorf("Metadata(%q) = %q, %v; want %q", name, v, ok, want)
	}
}

type result struct {
	resp *http.Response
	body string
	err  error
}

func do(c *http.Client, method, url, body string) chan result {
	ch := make(chan result, 1)
	go func() {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, url, rd)
		resp, err := c.Do(req)
		if err != nil {
			ch <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		ch <- result{resp: resp, body: string(b), err: err}
	}()
	return ch
}

func recv(t *testing.T, ch chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitLimit):
		t.Fatal("no response")
		return result{}
	}
}

func client(t *testing.T, keepAlive bool) *http.Client {
	tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitLimit}
}

func TestGET(t *testing.T) {
	st := serverType("srv", policy.H1, "method", "path", "a", "mime=content-type:")
	_, srv := serve(t, st)
	ctx := context.Background()
	res := do(client(t, false), http.MethodGet, "http://"+srv.Addr().String()+"/p?a=x%2Fy&z=1", "")
	s := accepted(t, srv)
	s.until("SERVER_TXN")
	s.meta("method", "GET")
	s.meta("path", "/p")
	s.meta("a", "x/y")
	if err := s.s.Respond(0); err != nil { // 0 means 200
		t.Fatal(err)
	}
	if err := s.s.SetMetadata("mime", "text/plain"); err != nil {
		t.Fatal(err)
	}
	if err := s.s.Send(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	r := recv(t, res)
	if r.err != nil || r.resp.StatusCode != 200 || r.body != "hello" || r.resp.ContentLength != 5 || r.resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("response: %+v %q %v", r.resp, r.body, r.err)
	}
	s.end("CREATING", "CONNECTING", "CONNECTED", "SERVER_TXN", "DISCONNECTED", "DESTROYING")
}

func TestPOSTRespond201(t *testing.T) {
	_, srv := serve(t, serverType("srv", policy.H1))
	ctx := context.Background()
	res := do(client(t, false), http.MethodPost, "http://"+srv.Addr().String()+"/", "body!")
	s := accepted(t, srv)
	s.until(`rx(EOM,"")`)
	_ = s.s.Respond(201)
	_ = s.s.SetTxLen(4)
	_ = s.s.Write(ctx, []byte("do"), ss.SOM)
	_ = s.s.Write(ctx, []byte("ne"), ss.EOM)
	r := recv(t, res)
	if r.err != nil || r.resp.StatusCode != 201 || r.body != "done" || r.resp.ContentLength != 4 {
		t.Fatalf("response: %+v %q %v", r.resp, r.body, r.err)
	}
	s.end("CREATING", "CONNECTING", "CONNECTED", "SERVER_TXN", `rx(SOM,"body!")`, `rx(EOM,"")`, "DISCONNECTED", "DESTROYING")
}

func TestNoRespondIs404(t *testing.T) {
	_, srv := serve(t, serverType("srv", policy.H1))
	res := do(client(t, false), http.MethodGet, "http://"+srv.Addr().String()+"/", "")
	s := accepted(t, srv)
	s.until("SERVER_TXN")
	_ = s.s.Send(context.Background(), []byte("no"))
	if r := recv(t, res); r.err != nil || r.resp.StatusCode != 404 {
		t.Fatalf("response: %+v %v", r.resp, r.err)
	}
	s.end("CREATING", "CONNECTING", "CONNECTED", "SERVER_TXN", "DISCONNECTED", "DESTROYING")
}

func TestKeepAlive(t *testing.T) {
	_, srv := serve(t, serverType("srv", policy.H1, "path"))
	ctx := context.Background()
	c := client(t, true)
	base := "http://" + srv.Addr().String()
	res := do(c, http.MethodGet, base+"/one", "")
	s := accepted(t, srv)
	s.until("SERVER_TXN")
	s.meta("path", "/one")
	_ = s.s.Respond(200)
	_ = s.s.Send(ctx, []byte("1"))
	if r := recv(t, res); r.err != nil || r.body != "1" {
		t.Fatalf("first: %+v %v", r.resp, r.err)
	}
	res = do(c, http.MethodGet, base+"/two", "")
	s.until("SERVER_TXN")
	s.meta("path", "/two")
	_ = s.s.Send(ctx, []byte("2")) // no Respond in this transaction: 404
	if r := recv(t, res); r.err != nil || r.body != "2" || r.resp.StatusCode != 404 {
		t.Fatalf("second: %+v %v", r.resp, r.err)
	}
	c.Transport.(*http.Transport).CloseIdleConnections()
	s.end("CREATING", "CONNECTING", "CONNECTED", "SERVER_TXN", "SERVER_TXN", "DISCONNECTED", "DESTROYING")
}

func TestDestroyBeforeRespond(t *testing.T) {
	_, srv := serve(t, serverType("srv", policy.H1))
	res := do(client(t, false), http.MethodGet, "http://"+srv.Addr().String()+"/", "")
	s := accepted(t, srv)
	s.until("SERVER_TXN")
	if err := s.s.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, res); r.err == nil {
		t.Fatalf("client got a response: %+v", r.resp)
	}
	s.end("CREATING", "CONNECTING", "CONNECTED", "SERVER_TXN", "DISCONNECTED", "DESTROYING")
}

func TestH2TLSTwoStreams(t *testing.T) {
	ca := testutil.NewCA(t)
	leaf := ca.Issue(t, "127.0.0.1")
	st := serverType("srv", policy.H2, "path")
	st.TLS = true
	st.ServerCert, st.ServerCertName = leaf.PolicyCert("c"), "c"
	st.ServerKey, st.ServerKeyName = leaf.PolicyKey("k"), "k"
	_, srv := serve(t, st)
	var p http.Protocols
	p.SetHTTP2(true)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: waitLimit}
	base := "https://" + srv.Addr().String()
	ctx := context.Background()
	r1 := do(c, http.MethodGet, base+"/a", "")
	s1 := accepted(t, srv)
	s1.until("SERVER_TXN")
	r2 := do(c, http.MethodGet, base+"/b", "")
	s2 := accepted(t, srv)
	s2.until("SERVER_TXN")
	s1.meta("path", "/a")
	s2.meta("path", "/b")
	for i, s := range []*recorder{s2, s1} {
		_ = s.s.Respond(200 + i)
		_ = s.s.Send(ctx, []byte("x"))
	}
	for _, r := range []result{recv(t, r1), recv(t, r2)} {
		if r.err != nil || r.resp.ProtoMajor != 2 {
			t.Fatalf("response: %+v %v", r.resp, r.err)
		}
	}
	for _, s := range []*recorder{s1, s2} {
		s.end("CREATING", "CONNECTING", "CONNECTED", "SERVER_TXN", "DISCONNECTED", "DESTROYING")
	}
}

func TestWebsocketUpgradeEcho(t *testing.T) {
	st := serverType("srv", policy.H1, "path")
	st.WSSubprotocol = "echo"
	_, srv := serve(t, st)
	d := websocket.Dialer{Subprotocols: []string{"echo"}, HandshakeTimeout: waitLimit}
	wc, _, err := d.Dial("ws://"+srv.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := accepted(t, srv)
	s.until("SERVER_UPGRADE")
	s.meta("path", "/ws")
	if err := wc.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	s.until(`rx(SOM|EOM,"ping")`)
	if err := s.s.Send(context.Background(), []byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, m, err := wc.ReadMessage(); err != nil || string(m) != "pong" {
		t.Fatalf("echo: %q %v", m, err)
	}
	_ = wc.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	_, _, _ = wc.ReadMessage()
	wc.Close()
	s.end("CREATING", "CONNECTING", "CONNECTED", "SERVER_UPGRADE", `rx(SOM|EOM,"ping")`, "DISCONNECTED", "DESTROYING")
}

func TestWebsocketWrongSubprotocol(t *testing.T) {
	st := serverType("srv", policy.H1)
	st.WSSubprotocol = "echo"
	_, srv := serve(t, st)
	d := websocket.Dialer{Subprotocols: []string{"other"}, HandshakeTimeout: waitLimit}
	_, resp, err := d.Dial("ws://"+srv.Addr().String()+"/", nil)
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("dial: %v %+v", err, resp)
	}
	resp.Body.Close()
	s := accepted(t, srv)
	s.end("CREATING", "CONNECTING", "DISCONNECTED", "DESTROYING")
}

func TestServerCloseDestroysAccepted(t *testing.T) {
	_, srv := serve(t, serverType("srv", policy.H1))
	res := do(client(t, false), http.MethodGet, "http://"+srv.Addr().String()+"/", "")
	s := accepted(t, srv)
	s.until("SERVER_TXN")
	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, res); r.err == nil {
		t.Fatalf("client got a response: %+v", r.resp)
	}
	s.end("CREATING", "CONNECTING", "CONNECTED", "SERVER_TXN", "DISCONNECTED", "DESTROYING")
}

func TestSharedListenerThroughRuntime(t *testing.T) {
	owner := serverType("owner", policy.H1, "path")
	sharer := serverType("sharer", policy.H1, "path")
	sharer.Endpoint, sharer.ListenerOf = "!owner", owner
	sharer.WSSubprotocol = "chat"
	rt, osrv := serve(t, owner, sharer)
	ssrv, err := rt.Serve(context.Background(), "sharer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ssrv.Close(context.Background()) })
	if ssrv.Addr().String() != osrv.Addr().String() {
		t.Fatalf("sharer listens on %v, owner on %v", ssrv.Addr(), osrv.Addr())
	}
	d := websocket.Dialer{Subprotocols: []string{"chat"}, HandshakeTimeout: waitLimit}
	wc, _, err := d.Dial("ws://"+osrv.Addr().String()+"/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := accepted(t, ssrv)
	s.until("SERVER_UPGRADE")
	s.meta("path", "/chat")
	wc.Close()
	s.end("CREATING", "CONNECTING", "CONNECTED", "SERVER_UPGRADE", "DISCONNECTED", "DESTROYING")

	res := do(client(t, false), http.MethodGet, "http://"+osrv.Addr().String()+"/plain", "")
	o := accepted(t, osrv)
	o.until("SERVER_TXN")
	o.meta("path", "/plain")
	_ = o.s.Respond(200)
	_ = o.s.Send(context.Background(), []byte("owner"))
	if r := recv(t, res); r.err != nil || r.body != "owner" {
		t.Fatalf("plain: %+v %v", r.resp, r.err)
	}
	o.end("CREATING", "CONNECTING", "CONNECTED", "SERVER_TXN", "DISCONNECTED", "DESTROYING")
}

// TestParsedPolicy serves from a parsed JSON policy: a TLS h2 server with
// its certificate and key in the policy, and a "!name" sharer of it.
func TestParsedPolicy(t *testing.T) {
	ca := testutil.NewCA(t)
	leaf := ca.Issue(t, "127.0.0.1")
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	doc := fmt.Sprintf(`{
	  "release": "e2e",
	  "certs": [{ "c": "%s", "k": "%s" }],
	  "s": [{
	    "srv": { "server": true, "protocol": "h2", "endpoint": "127.0.0.1", "port": 0,
	             "tls": true, "server_cert": "c", "server_key": "k",
	             "metadata": [{ "path": "", "mime": "content-type:" }] },
	    "ws": { "server": true, "protocol": "h1", "endpoint": "!srv", "ws_subprotocol": "x" }
	  }]
	}`, b64(leaf.DER), b64(leaf.KeyDER))
	p, _, err := policy.Parse([]byte(doc), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Streamtype("ws"); st.ListenerOf == nil || st.ListenerOf.Name != "srv" {
		t.Fatalf("ListenerOf = %v", st.ListenerOf)
	}
	rt, err := ss.New(context.Background(), ss.Config{Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	defer rt.Close(ctx)
	srv, err := rt.Serve(ctx, "srv")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(ctx)
	ws, err := rt.Serve(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close(ctx)

	var protos http.Protocols
	protos.SetHTTP2(true)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, Protocols: &protos}
	defer tr.CloseIdleConnections()
	res := do(&http.Client{Transport: tr, Timeout: waitLimit}, http.MethodGet, "https://"+srv.Addr().String()+"/parsed", "")
	s := accepted(t, srv)
	s.until("SERVER_TXN")
	s.meta("path", "/parsed")
	_ = s.s.Respond(0)
	_ = s.s.SetMetadata("mime", "text/x-e2e")
	_ = s.s.Send(ctx, []byte("parsed"))
	r := recv(t, res)
	if r.err != nil || r.resp.ProtoMajor != 2 || r.resp.StatusCode != 200 || r.body != "parsed" || r.resp.Header.Get("Content-Type") != "text/x-e2e" {
		t.Fatalf("response: %+v %q %v", r.resp, r.body, r.err)
	}
	s.end("CREATING", "CONNECTING", "CONNECTED", "SERVER_TXN", "DISCONNECTED", "DESTROYING")
	if n := rt.Stats().IllegalTransitions; n != 0 {
		t.Errorf("IllegalTransitions = %d", n)
	}
}

func TestDirectProtoStr(t *testing.T) {
	st := serverType("srv", policy.H1)
	st.DirectProtoStr = true
	_, srv := serve(t, st)
	ctx := context.Background()
	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr().String()+"/", nil)
	req.Header.Set("X-Request-Thing", "abc")
	ch := make(chan result, 1)
	go func() {
		resp, err := client(t, false).Do(req)
		if err != nil {
			ch <- result{err: err}
			return
		}
		resp.Body.Close()
		ch <- result{resp: resp}
	}()
	s := accepted(t, srv)
	s.until("SERVER_TXN")
	s.meta("X-Request-Thing:", "abc") // names are case-insensitive
	if err := s.s.SetMetadata("x-reply:", "r1"); err != nil {
		t.Fatal(err)
	}
	_ = s.s.Respond(200)
	_ = s.s.Send(ctx, nil)
	r := recv(t, ch)
	if r.err != nil || r.resp.Header.Get("X-Reply") != "r1" {
		t.Fatalf("response: %+v %v", r.resp, r.err)
	}
	s.end("CREATING", "CONNECTING", "CONNECTED", "SERVER_TXN", "DISCONNECTED", "DESTROYING")
}
