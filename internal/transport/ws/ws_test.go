package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.GoleakOptions()...)
}

func eq(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
}

func TestCheckFraming(t *testing.T) {
	for _, c := range []struct {
		open  bool
		flags event.Flags
		ok    bool
	}{
		{false, event.SOM | event.EOM, true},
		{false, event.SOM, true},
		{true, 0, true},
		{true, event.EOM, true},
		{true, event.SOM, false},
		{true, event.SOM | event.EOM, false},
		{false, 0, false},
		{false, event.EOM, false},
	} {
		err := CheckFraming(c.open, c.flags)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrFraming)) {
			t.Errorf("CheckFraming(%v, %v) = %v, want ok=%v", c.open, c.flags, err, c.ok)
		}
	}
}

// typedEcho echoes and records the message types seen.
type typedEcho struct {
	mu    sync.Mutex
	types []int
}

func (e *typedEcho) handle(c *websocket.Conn) {
	for {
		mt, p, err := c.ReadMessage()
		if err != nil {
			return
		}
		e.mu.Lock()
		e.types = append(e.types, mt)
		e.mu.Unlock()
		if err := c.WriteMessage(mt, p); err != nil {
			return
		}
	}
}

func TestEchoTextAndBinary(t *testing.T) {
	for _, binary := range []bool{false, true} {
		t.Run(map[bool]string{false: "text", true: "binary"}[binary], func(t *testing.T) {
			e := &typedEcho{}
			srv := newWSServer(t, e.handle)
			st := wsType(srv.hostPort())
			st.WSBinary = binary
			sink := newSink()
			wait := runAsync(t, attempt(st, newTx(msg("hello"), msg(""), msg("world"))), sink)
			got := sink.waitEvents(t, 4)
			eq(t, got, []string{"CONNECTED", "rx SOM|EOM hello", "rx SOM|EOM ", "rx SOM|EOM world"})
			res := wait(true)
			if !errors.Is(res.Err, context.Canceled) {
				t.Fatalf("Result.Err = %v, want context.Canceled", res.Err)
			}
			want := websocket.TextMessage
			if binary {
				want = websocket.BinaryMessage
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			if !slices.Equal(e.types, []int{want, want, want}) {
				t.Fatalf("server saw message types %v, want all %d", e.types, want)
			}
		})
	}
}

func TestHandshakeRequest(t *testing.T) {
	srv := newWSServer(t, echo)
	srv.respHdr = http.Header{"X-Srv": {"from-server"}, "X-Other": {"o"}}
	st := wsType(srv.hostPort())
	st.Metadata = []*policy.MetadataItem{
		{Name: "tok", Header: "x-tok", HeaderRaw: "x-tok:", Index: 0},
		{Name: "srv", Header: "x-srv", HeaderRaw: "x-srv:", Index: 1},
		{Name: "id", Index: 2},
		{Name: "unset", Header: "x-unset", Index: 3},
	}
	st.HTTPURL = "v1/${id}?a=b"
	st.HTTPURLTmpl = &policy.Template{Raw: st.HTTPURL, Parts: []policy.TemplatePart{{Lit: "v1/", Meta: -1}, {Lit: "id", Meta: 2}, {Lit: "?a=b", Meta: -1}}}
	st.HTTPMethod = "POST" // ignored for ws
	st.HTTPAuthHeader = "authorization"
	st.HTTPAuthPreamble = "Bearer "
	st.HTTPDSNHeader = "x-dsn"
	st.HTTPFWVHeader = "x-fwv"
	st.HTTPDevtypeHeader = "x-devtype"
	st.DirectProtoStr = true
	a := attempt(st, newTx())
	a.Metadata[0] = transport.MetadataValue{Value: "abc", Set: true}
	a.Metadata[1] = transport.MetadataValue{Value: "app-value", Set: true}
	a.Metadata[2] = transport.MetadataValue{Value: "42", Set: true}
	a.Extra = map[string]string{"x-extra:": "e1"}
	a.Env.Token = func(slot int) []byte {
		if slot == 0 {
			return []byte("TOKEN")
		}
		return nil
	}
	a.Env.Device = transport.Device{Serial: "SN1", FirmwareVersion: "1.2", Type: "dev"}
	sink := newSink()
	wait := runAsync(t, a, sink)
	sink.waitFor(t, "CONNECTED", func(e []string) bool { return slices.Contains(e, "CONNECTED") })
	wait(true)

	r := srv.lastReq()
	if r.Method != "GET" || r.RequestURI != "/v1/42?a=b" {
		t.Errorf("request line %s %s, want GET /v1/42?a=b", r.Method, r.RequestURI)
	}
	if r.Host != srv.hostPort() {
		t.Errorf("Host %q, want %q", r.Host, srv.hostPort())
	}
	for h, want := range map[string]string{
		"X-Tok": "abc", "X-Srv": "app-value", "Authorization": "Bearer TOKEN", "X-Dsn": "SN1",
		"X-Fwv": "1.2", "X-Devtype": "dev", "X-Extra": "e1", "User-Agent": "", "X-Unset": "",
		"Sec-Websocket-Protocol": "", "Origin": "",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("request header %s = %q, want %q", h, got, want)
		}
	}
	// Captured before CONNECTED; srv overwrites the application's value.
	got := sink.Events(false)
	i := slices.Index(got, "CONNECTED")
	before := got[:i]
	for _, want := range []string{"meta srv=from-server", "meta x-srv:=from-server", "meta x-other:=o"} {
		if !slices.Contains(before, want) {
			t.Errorf("missing %q before CONNECTED in %q", want, got)
		}
	}
	if slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "meta tok=") }) {
		t.Errorf("tok captured although absent from the response: %q", got)
	}
}

func TestAuthHexifyAndSlot(t *testing.T) {
	srv := newWSServer(t, echo)
	st := wsType(srv.hostPort())
	st.HTTPAuthHeader = "x-auth"
	st.AuthHexify = true
	st.UseAuth = &policy.Auth{Name: "a", Blob: 2}
	a := attempt(st, newTx())
	a.Env.Token = func(slot int) []byte { return []byte{byte(slot), 0xff} }
	sink := newSink()
	wait := runAsync(t, a, sink)
	sink.waitEvents(t, 1)
	wait(true)
	if got := srv.lastReq().Header.Get("X-Auth"); got != "02ff" {
		t.Fatalf("x-auth = %q, want 02ff", got)
	}
}

func TestSubprotocol(t *testing.T) {
	for _, tc := range []struct {
		name, endpointPath, httpURL string
		wantURI                     string
	}{
		{"no http_url", "", "", "/"},
		{"http_url", "", "/chat", "/chat"},
		{"url path", "/p?x=1", "ignored", "/p?x=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newWSServer(t, echo)
			srv.upgrader.Subprotocols = []string{"other", "lws-test"}
			ep := srv.hostPort()
			if tc.endpointPath != "" {
				ep = "ws://" + ep + tc.endpointPath
			}
			st := wsType(ep)
			st.HTTPURL = tc.httpURL
			st.WSSubprotocol = "lws-test"
			sink := newSink()
			wait := runAsync(t, attempt(st, newTx(msg("x"))), sink)
			eq(t, sink.waitEvents(t, 2), []string{"CONNECTED", "rx SOM|EOM x"})
			wait(true)
			r := srv.lastReq()
			if got := r.Header.Get("Sec-WebSocket-Protocol"); got != "lws-test" {
				t.Errorf("offered %q, want lws-test", got)
			}
			if r.RequestURI != tc.wantURI {
				t.Errorf("path %q, want %q", r.RequestURI, tc.wantURI)
			}
		})
	}
}

func TestSubprotocolMismatch(t *testing.T) {
	for _, tc := range []struct{ offer, selected string }{
		{"lws-test", "other"}, // a different one
		{"lws-test", ""},      // none
		{"", "other"},         // one that was not offered
	} {
		srv := newWSServer(t, echo)
		srv.respHdr = http.Header{}
		if tc.selected != "" {
			srv.respHdr.Set("Sec-WebSocket-Protocol", tc.selected)
		}
		st := wsType(srv.hostPort())
		st.WSSubprotocol = tc.offer
		sink := newSink()
		res := New(nil).Run(context.Background(), attempt(st, newTx()), sink)
		if !errors.Is(res.Err, ErrSubprotocol) {
			t.Errorf("offer %q selected %q: Err = %v, want ErrSubprotocol", tc.offer, tc.selected, res.Err)
		}
		if slices.Contains(sink.Events(true), "CONNECTED") {
			t.Errorf("CONNECTED reported: %q", sink.Events(true))
		}
	}
}

func TestHandshakeRefused(t *testing.T) {
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Srv", "nope")
		http.Error(w, "no", http.StatusNotFound)
	}))
	st := wsType(strings.TrimPrefix(srv.URL, "http://"))
	st.Metadata = []*policy.MetadataItem{{Name: "srv", Header: "x-srv"}}
	sink := newSink()
	res := New(nil).Run(context.Background(), attempt(st, newTx()), sink)
	if !errors.Is(res.Err, ErrHandshake) || !strings.Contains(res.Err.Error(), "404") {
		t.Fatalf("Err = %v, want ErrHandshake with 404", res.Err)
	}
	eq(t, sink.Events(true), []string{"meta srv=nope"})

	// Nothing listening.
	srv.Close()
	sink = newSink()
	res = New(nil).Run(context.Background(), attempt(st, newTx()), sink)
	if res.Err == nil || len(sink.Events(true)) != 0 {
		t.Fatalf("refused port: Err = %v, events %q", res.Err, sink.Events(true))
	}
}

func TestFragmentedSend(t *testing.T) {
	frames := make(chan frame, 16)
	srv := newWSServer(t, func(c *websocket.Conn) {
		for {
			f, err := readFrame(c.NetConn())
			if err != nil {
				close(frames)
				return
			}
			frames <- f
		}
	})
	st := wsType(srv.hostPort())
	st.WSBinary = true
	tx := newTx()
	sink := newSink()
	wait := runAsync(t, attempt(st, tx), sink)
	sink.waitEvents(t, 1)
	big := strings.Repeat("0123456789abcdef", 10000) // 160000 B: one frame, masked in pieces
	tx.send("one", event.SOM)
	tx.send("two", 0)
	tx.send(big, 0)
	tx.send("", 0)
	tx.send("end", event.EOM)
	tx.send("solo", event.SOM|event.EOM)
	want := []frame{
		{op: opBinary, payload: []byte("one")},
		{op: opContinuation, payload: []byte("two")},
		{op: opContinuation, payload: []byte(big)},
		{op: opContinuation, payload: []byte{}},
		{op: opContinuation, fin: true, payload: []byte("end")},
		{op: opBinary, fin: true, payload: []byte("solo")},
	}
	for i, w := range want {
		select {
		case f := <-frames:
			if f.op != w.op || f.fin != w.fin || !f.masked || !bytes.Equal(f.payload, w.payload) {
				t.Fatalf("frame %d: op %d fin %v masked %v len %d, want op %d fin %v masked len %d",
					i, f.op, f.fin, f.masked, len(f.payload), w.op, w.fin, len(w.payload))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("frame %d not received", i)
		}
	}
	wait(true)
	// The close frame RunConn sends on cancel.
	if f, ok := <-frames; !ok || f.op != opClose || !bytes.Equal(f.payload, websocket.FormatCloseMessage(1000, "")) {
		t.Fatalf("after cancel: frame %+v (ok %v), want close 1000", f, ok)
	}
}

func TestFragmentedMessageReassembled(t *testing.T) {
	got := make(chan string, 4)
	srv := newWSServer(t, func(c *websocket.Conn) {
		for {
			_, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			got <- string(p)
		}
	})
	tx := newTx()
	sink := newSink()
	wait := runAsync(t, attempt(wsType(srv.hostPort()), tx), sink)
	sink.waitEvents(t, 1)
	// Misuse: SOM while open and continuation with none open are dropped.
	tx.send("a", event.SOM)
	tx.send("X", event.SOM)
	tx.send("b", event.EOM)
	tx.send("Y", 0)
	tx.send("Z", event.EOM)
	tx.send("c", event.SOM|event.EOM)
	for _, w := range []string{"ab", "c"} {
		select {
		case g := <-got:
			if g != w {
				t.Fatalf("server got %q, want %q", g, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %q not received", w)
		}
	}
	wait(true)
}

func TestLargeMessageChunks(t *testing.T) {
	sizes := []int{100, RxChunkSize - 1, RxChunkSize, 2 * RxChunkSize, 3*RxChunkSize + 5000}
	srv := newWSServer(t, func(c *websocket.Conn) {
		for i, n := range sizes {
			p := bytes.Repeat([]byte{byte('a' + i)}, n)
			if err := c.WriteMessage(websocket.BinaryMessage, p); err != nil {
				return
			}
		}
		// Fragmented on the wire: still one message.
		w, _ := c.NextWriter(websocket.TextMessage)
		w.Write([]byte("frag-"))
		w.Write(bytes.Repeat([]byte("x"), 8000)) // gorilla flushes frames at its 4 KiB buffer
		w.Close()
		c.ReadMessage() // until the client goes
	})
	sink := newSink()
	wait := runAsync(t, attempt(wsType(srv.hostPort()), newTx()), sink)
	want := []string{
		"CONNECTED",
		"rx SOM|EOM 100",
		"rx SOM|EOM 65535",
		"rx SOM|EOM 65536",
		"rx SOM 65536", "rx EOM 65536",
		"rx SOM 65536", "rx 0 65536", "rx 0 65536", "rx EOM 5000",
		"rx SOM|EOM 8005",
	}
	eq(t, sink.waitEvents(t, len(want)), want)
	wait(true)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	var all []byte
	for _, d := range sink.data {
		all = append(all, d...)
	}
	n := 0
	for i, s := range sizes {
		if !bytes.Equal(all[n:n+s], bytes.Repeat([]byte{byte('a' + i)}, s)) {
			t.Fatalf("message %d payload mismatch", i)
		}
		n += s
	}
}

func TestServerClose(t *testing.T) {
	for _, tc := range []struct {
		name   string
		close  []byte
		wantOK bool
		code   int
	}{
		{"4000", websocket.FormatCloseMessage(4000, "go away"), false, 4000},
		{"1000", websocket.FormatCloseMessage(1000, "bye"), true, 0},
		{"no status", []byte{}, true, 0},
		{"1011", websocket.FormatCloseMessage(1011, ""), false, 1011},
	} {
		t.Run(tc.name, func(t *testing.T) {
			echoed := make(chan int, 1)
			srv := newWSServer(t, func(c *websocket.Conn) {
				c.WriteMessage(websocket.TextMessage, []byte("hi"))
				c.WriteControl(websocket.CloseMessage, tc.close, time.Now().Add(time.Second))
				_, _, err := c.ReadMessage()
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					echoed <- ce.Code
				}
				close(echoed)
			})
			sink := newSink()
			wait := runAsync(t, attempt(wsType(srv.hostPort()), newTx()), sink)
			res := wait(false)
			eq(t, sink.Events(true), []string{"CONNECTED", "rx SOM|EOM hi"})
			if tc.wantOK {
				if res.Err != nil {
					t.Fatalf("Err = %v, want nil", res.Err)
				}
			} else {
				var ce *websocket.CloseError
				if !errors.Is(res.Err, ErrPeerClosed) || !errors.As(res.Err, &ce) || ce.Code != tc.code {
					t.Fatalf("Err = %v, want ErrPeerClosed with code %d", res.Err, tc.code)
				}
			}
			if _, ok := <-echoed; !ok {
				t.Fatalf("close not echoed to the server")
			}
		})
	}
}

func TestConnectionLost(t *testing.T) {
	srv := newWSServer(t, func(c *websocket.Conn) {
		c.WriteMessage(websocket.TextMessage, []byte("x"))
		c.NetConn().Close()
	})
	sink := newSink()
	res := runAsync(t, attempt(wsType(srv.hostPort()), newTx()), sink)(false)
	if !errors.Is(res.Err, ErrConnLost) {
		t.Fatalf("Err = %v, want ErrConnLost", res.Err)
	}
	eq(t, sink.Events(true), []string{"CONNECTED", "rx SOM|EOM x"})
}

func shortValidity(t *testing.T) {
	old := validitySecond
	validitySecond = 50 * time.Millisecond
	t.Cleanup(func() { validitySecond = old })
}

func TestValidityKeepalive(t *testing.T) {
	shortValidity(t)
	npings := 0
	var mu sync.Mutex
	srv := newWSServer(t, func(c *websocket.Conn) {
		def := c.PingHandler()
		c.SetPingHandler(func(s string) error {
			mu.Lock()
			npings++
			mu.Unlock()
			return def(s)
		})
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	})
	st := wsType(srv.hostPort())
	st.Retry = &policy.Retry{Name: "r", SValidPing: 2, SValidHup: 20} // 100 ms / 1 s
	sink := newSink()
	wait := runAsync(t, attempt(st, newTx()), sink)
	sink.waitFor(t, "3 confirmations", func([]string) bool { return sink.count("valid") >= 3 })
	res := wait(true)
	if !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("Err = %v, want context.Canceled (connection kept alive)", res.Err)
	}
	mu.Lock()
	defer mu.Unlock()
	if npings < 3 {
		t.Fatalf("server saw %d pings", npings)
	}
}

func TestValidityTimeout(t *testing.T) {
	shortValidity(t)
	for _, tc := range []struct {
		name       string
		ping, hup  uint16
		wantPings  bool
		minElapsed time.Duration
	}{
		{"ping then hup", 2, 4, true, 200 * time.Millisecond},
		{"hup only", 0, 4, false, 200 * time.Millisecond},
		{"ping >= hup", 6, 4, false, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pinged := make(chan struct{}, 10)
			srv := newWSServer(t, func(c *websocket.Conn) {
				c.SetPingHandler(func(string) error { pinged <- struct{}{}; return nil }) // no pong
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
				}
			})
			st := wsType(srv.hostPort())
			st.Retry = &policy.Retry{Name: "r", SValidPing: tc.ping, SValidHup: tc.hup}
			sink := newSink()
			start := time.Now()
			res := runAsync(t, attempt(st, newTx()), sink)(false)
			if el := time.Since(start); el < tc.minElapsed {
				t.Errorf("closed after %v, want ≥ %v", el, tc.minElapsed)
			}
			if !errors.Is(res.Err, ErrValidity) {
				t.Fatalf("Err = %v, want ErrValidity", res.Err)
			}
			if tc.wantPings {
				select {
				case <-pinged:
				case <-time.After(5 * time.Second):
					t.Fatal("no PING reached the server")
				}
			} else if len(pinged) > 0 {
				t.Fatal("PING sent although ping ≥ hup or ping = 0")
			}
		})
	}
}

func TestPingAnswered(t *testing.T) {
	pong := make(chan string, 1)
	srv := newWSServer(t, func(c *websocket.Conn) {
		c.SetPongHandler(func(s string) error { pong <- s; return nil })
		c.WriteControl(websocket.PingMessage, []byte("p1"), time.Now().Add(time.Second))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	})
	sink := newSink()
	wait := runAsync(t, attempt(wsType(srv.hostPort()), newTx()), sink)
	select {
	case s := <-pong:
		if s != "p1" {
			t.Fatalf("pong %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
	wait(true)
	eq(t, sink.Events(true), []string{"CONNECTED"}) // ping not delivered, not a confirmation
}

func TestTLS(t *testing.T) {
	ca := newCA(t)
	srv := newWSTLSServer(t, ca, echo)
	port := srv.Listener.Addr().String()

	t.Run("trust store", func(t *testing.T) {
		st := wsType(port)
		st.TLS = true
		st.TrustStore = ca.trustStore()
		sink := newSink()
		wait := runAsync(t, attempt(st, newTx(msg("secure"))), sink)
		eq(t, sink.waitEvents(t, 2), []string{"CONNECTED", "rx SOM|EOM secure"})
		wait(true)
	})
	t.Run("wss url", func(t *testing.T) {
		st := wsType("wss://" + port + "/x")
		st.TrustStore = ca.trustStore()
		sink := newSink()
		wait := runAsync(t, attempt(st, newTx(msg("s"))), sink)
		eq(t, sink.waitEvents(t, 2), []string{"CONNECTED", "rx SOM|EOM s"})
		wait(true)
	})
	t.Run("wrong CA", func(t *testing.T) {
		st := wsType(port)
		st.TLS = true
		st.TrustStore = newCA(t).trustStore()
		sink := newSink()
		res := New(nil).Run(context.Background(), attempt(st, newTx()), sink)
		if !errors.Is(res.Err, transport.ErrTLS) || !transport.IsTLSVerifyError(res.Err) {
			t.Fatalf("Err = %v, want a TLS verification error", res.Err)
		}
		eq(t, sink.Events(true), nil)
	})
	t.Run("no trust store, system roots", func(t *testing.T) {
		st := wsType(port)
		st.TLS = true
		res := New(nil).Run(context.Background(), attempt(st, newTx()), newSink())
		if !transport.IsTLSVerifyError(res.Err) {
			t.Fatalf("Err = %v, want a TLS verification error", res.Err)
		}
	})
}

func TestCookies(t *testing.T) {
	srv := newWSServer(t, echo)
	srv.respHdr = http.Header{"Set-Cookie": {"sid=s1; Path=/"}}
	jar, _ := cookiejar.New(nil)
	for _, withFlag := range []bool{true, false} {
		st := wsType(srv.hostPort())
		st.HTTPCookies = withFlag
		for range 2 {
			a := attempt(st, newTx())
			a.Env.Cookies = jar
			sink := newSink()
			wait := runAsync(t, a, sink)
			sink.waitEvents(t, 1)
			wait(true)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	var got []string
	for _, r := range srv.reqs {
		got = append(got, r.Header.Get("Cookie"))
	}
	if !slices.Equal(got, []string{"", "sid=s1", "", ""}) {
		t.Fatalf("Cookie headers %q", got)
	}
}

func TestPerf(t *testing.T) {
	srv := newWSServer(t, func(c *websocket.Conn) {
		c.WriteMessage(websocket.TextMessage, []byte("x"))
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		c.ReadMessage()
	})
	st := wsType(srv.hostPort())
	st.Perf = true
	sink := newSink()
	res := runAsync(t, attempt(st, newTx()), sink)(false)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	eq(t, sink.Events(true), []string{"CONNECTED", "rx SOM|EOM x", "perf"})
	sink.mu.Lock()
	p, f := sink.data[1], sink.flags[1]
	sink.mu.Unlock()
	var r map[string]any
	if f != event.SOM|event.EOM|event.PerfJSON || json.Unmarshal(p, &r) != nil || r["peer"] != "127.0.0.1" {
		t.Fatalf("perf %v %s", f, p)
	}
	if _, ok := r["prot_specific"]; ok {
		t.Fatalf("prot_specific present for ws: %s", p)
	}

	// And on a failed attempt.
	srv.Close()
	sink = newSink()
	New(nil).Run(context.Background(), attempt(st, newTx()), sink)
	eq(t, sink.Events(true), []string{"perf"})
}

// TestRunConnServerRole runs RunConn on the server end of an upgrade (as the
// HTTP server does): unmasked frames, one per chunk.
func TestRunConnServerRole(t *testing.T) {
	sink := newSink()
	tx := newTx()
	results := make(chan transport.Result, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := newWSServer(t, func(c *websocket.Conn) {
		st := wsType("unused")
		st.Server = true
		results <- RunConn(ctx, c, attempt(st, tx), sink)
	})
	c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.hostPort()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tx.send("he", event.SOM)
	tx.send("llo", event.EOM)
	for _, want := range []frame{{op: opText, payload: []byte("he")}, {op: opContinuation, fin: true, payload: []byte("llo")}} {
		f, err := readFrame(c.NetConn())
		if err != nil || f.masked || f.op != want.op || f.fin != want.fin || string(f.payload) != string(want.payload) {
			t.Fatalf("frame %+v err %v, want %+v unmasked", f, err, want)
		}
	}
	// The other direction through gorilla's client.
	if err := c.WriteMessage(websocket.BinaryMessage, []byte("up")); err != nil {
		t.Fatal(err)
	}
	sink.waitEvents(t, 1)
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
	select {
	case res := <-results:
		if res.Err != nil {
			t.Fatalf("Err = %v", res.Err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunConn did not return")
	}
	eq(t, sink.Events(true), []string{"rx SOM|EOM up"})
}

func TestCancelDuringHandshake(t *testing.T) {
	// A server that accepts TCP but never answers the upgrade.
	hang := make(chan struct{})
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer close(hang)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan transport.Result, 1)
	go func() {
		done <- New(nil).Run(ctx, attempt(wsType(strings.TrimPrefix(srv.URL, "http://")), newTx()), newSink())
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case res := <-done:
		if !errors.Is(res.Err, context.Canceled) {
			t.Fatalf("Err = %v, want context.Canceled", res.Err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRxSinkError(t *testing.T) {
	srv := newWSServer(t, func(c *websocket.Conn) {
		c.WriteMessage(websocket.TextMessage, []byte("x"))
		c.ReadMessage()
	})
	sink := newSink()
	sink.rxErr = errors.New("stream gone")
	res := runAsync(t, attempt(wsType(srv.hostPort()), newTx()), sink)(false)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "stream gone") {
		t.Fatalf("Err = %v", res.Err)
	}
}

// pingSink is a recSink with the stream runtime's SetPing extension.
type pingSink struct {
	*recSink
	ping chan func()
}

func (s *pingSink) SetPing(f func()) { s.ping <- f }

// TestSetPing: with a sink that takes a ping function the stream runs the
// timer; RunConn only sends PINGs on request and never times out itself.
func TestSetPing(t *testing.T) {
	shortValidity(t)
	pings := make(chan struct{}, 10)
	srv := newWSServer(t, func(c *websocket.Conn) {
		def := c.PingHandler()
		c.SetPingHandler(func(s string) error { pings <- struct{}{}; return def(s) })
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	})
	st := wsType(srv.hostPort())
	st.Retry = &policy.Retry{Name: "r", SValidPing: 1, SValidHup: 2} // would be 50/100 ms
	sink := &pingSink{recSink: newSink(), ping: make(chan func(), 1)}
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan transport.Result, 1)
	go func() { done <- New(nil).Run(ctx, attempt(st, newTx()), sink) }()
	var ping func()
	select {
	case ping = <-sink.ping:
	case <-time.After(5 * time.Second):
		t.Fatal("SetPing not called")
	}
	time.Sleep(300 * time.Millisecond) // no own timer: no ping, no timeout
	if len(pings) != 0 || len(done) != 0 {
		t.Fatalf("RunConn ran its own validity timer (pings %d, ended %v)", len(pings), len(done) != 0)
	}
	ping()
	ping() // coalesced or sent twice: both fine
	select {
	case <-pings:
	case <-time.After(5 * time.Second):
		t.Fatal("no PING after the ping function was called")
	}
	sink.waitFor(t, "confirmation", func(e []string) bool { return slices.Contains(e, "valid") })
	cause := errors.New("validity timeout cause")
	cancel(cause)
	if res := <-done; !errors.Is(res.Err, cause) {
		t.Fatalf("Err = %v, want the ctx cause", res.Err)
	}
}

func TestSigV4(t *testing.T) {
	srv := newWSServer(t, echo)
	st := wsType(srv.hostPort())
	st.HTTPURL = "/mqtt?x=1"
	st.UseAuth = &policy.Auth{Name: "aws", Type: policy.AuthSigV4, Blob: 1}
	st.AWSRegion, st.AWSService = "region", "service"
	st.Metadata = []*policy.MetadataItem{
		{Name: "region", Index: 0}, {Name: "service", Index: 1},
		{Name: "date", Header: "x-amz-date", Index: 2}, {Name: "hash", Header: "x-amz-content-sha256", Index: 3},
	}
	a := attempt(st, newTx())
	for i, v := range []string{"us-east-1", "iotdevicegateway", "20240101T000000Z", "UNSIGNED-PAYLOAD"} {
		a.Metadata[i] = transport.MetadataValue{Value: v, Set: true}
	}
	a.Env.AWSCredentials = func(_ context.Context, slot int) (aws.Credentials, error) {
		if slot != 1 {
			return aws.Credentials{}, nil
		}
		return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret", SessionToken: "tok"}, nil
	}
	sink := newSink()
	wait := runAsync(t, a, sink)
	sink.waitEvents(t, 1)
	wait(true)
	r := srv.lastReq()
	auth := r.Header.Get("Authorization")
	want := "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/iotdevicegateway/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="
	if !strings.HasPrefix(auth, want) || r.Header.Get("X-Amz-Security-Token") != "tok" {
		t.Fatalf("Authorization %q, token %q", auth, r.Header.Get("X-Amz-Security-Token"))
	}

	// Unsigned: the attempt fails before connecting.
	a.Metadata[2] = transport.MetadataValue{}
	sink = newSink()
	res := New(nil).Run(context.Background(), a, sink)
	if !errors.Is(res.Err, ErrSigV4) || len(sink.Events(true)) != 0 {
		t.Fatalf("Err = %v, events %q", res.Err, sink.Events(true))
	}
}

func TestUnixSocket(t *testing.T) {
	path := t.TempDir() + "/ws.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	hosts := make(chan string, 1)
	var wg sync.WaitGroup
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		hosts <- r.Host // after Add: the test reads it before Wait
		defer c.Close()
		echo(c)
	})}
	go hs.Serve(ln)
	defer func() { hs.Close(); wg.Wait() }()
	sink := newSink()
	wait := runAsync(t, attempt(wsType("+"+path), newTx(msg("unix"))), sink)
	eq(t, sink.waitEvents(t, 2), []string{"CONNECTED", "rx SOM|EOM unix"})
	wait(true)
	if h := <-hosts; h != "localhost" {
		t.Fatalf("Host %q, want localhost", h)
	}
}

func TestSOCKS5(t *testing.T) {
	srv := newWSServer(t, echo)
	socks := newSOCKS5(t)
	_, port, _ := net.SplitHostPort(srv.hostPort())
	st := wsType("localhost:" + port) // the name goes to the proxy
	st.ViaSOCKS5 = socks.ln.Addr().String()
	sink := newSink()
	wait := runAsync(t, attempt(st, newTx(msg("via socks"))), sink)
	eq(t, sink.waitEvents(t, 2), []string{"CONNECTED", "rx SOM|EOM via socks"})
	wait(true)
	socks.mu.Lock()
	defer socks.mu.Unlock()
	if !slices.Equal(socks.dests, []string{"localhost:" + port}) {
		t.Fatalf("proxy asked for %q", socks.dests)
	}
}

// TestCancelWhileWriteBlocked: a peer that stops reading blocks the writer;
// PINGs and cancellation must still work.
func TestCancelWhileWriteBlocked(t *testing.T) {
	shortValidity(t)
	stop := make(chan struct{})
	srv := newWSServer(t, func(c *websocket.Conn) { <-stop }) // never reads
	defer close(stop)
	st := wsType(srv.hostPort())
	st.Retry = &policy.Retry{Name: "r", SValidPing: 1, SValidHup: 100}
	big := make([]byte, 4<<20)
	tx := newTx()
	for range 16 {
		tx.ch <- transport.Chunk{Data: big, Flags: event.SOM | event.EOM, Len: -1}
	}
	sink := newSink()
	wait := runAsync(t, attempt(st, tx), sink)
	sink.waitEvents(t, 1)
	time.Sleep(300 * time.Millisecond) // the writer blocks; pings are due
	start := time.Now()
	res := wait(true)
	// Without the cancel it would not return (runAsync gives up at 10 s).
	if el := time.Since(start); el > 8*time.Second {
		t.Fatalf("Run took %v to return after cancel", el)
	}
	if !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("Err = %v", res.Err)
	}
}

func TestConnectTimeout(t *testing.T) {
	hang := make(chan struct{})
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer close(hang)
	a := attempt(wsType(strings.TrimPrefix(srv.URL, "http://")), newTx())
	a.Env.ConnectTimeout = 200 * time.Millisecond
	start := time.Now()
	res := New(nil).Run(context.Background(), a, newSink())
	// The server never answers: without the timeout Run would not return.
	if el := time.Since(start); !errors.Is(res.Err, context.DeadlineExceeded) || el > 5*time.Second {
		t.Fatalf("Err = %v after %v, want deadline exceeded after ~200ms", res.Err, el)
	}
}
