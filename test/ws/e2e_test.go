package ws_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

// End-to-end: ss.New / Create / Events over the ws transport, asserting the
// docs/streams.md §5.8 sequences.

const wait = 5 * time.Second

// server upgrades every request and runs handle with the connection's
// 0-based index.
type server struct {
	*httptest.Server
	n     atomic.Int32
	mu    sync.Mutex
	conns []*websocket.Conn
	wg    sync.WaitGroup
	done  bool
}

func newServer(t *testing.T, handle func(i int, c *websocket.Conn)) *server {
	s := &server{}
	up := websocket.Upgrader{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, http.Header{"X-Srv": {"v1"}})
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns = append(s.conns, c)
		s.wg.Add(1)
		s.mu.Unlock()
		defer s.wg.Done()
		defer c.Close()
		handle(int(s.n.Add(1)-1), c)
	}))
	t.Cleanup(func() {
		s.mu.Lock()
		s.done = true
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.Close()
		s.wg.Wait()
	})
	return s
}

func (s *server) hostPort() string { return strings.TrimPrefix(s.URL, "http://") }

// drain reads until the connection ends.
func drain(c *websocket.Conn) {
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

func sendAndClose(c *websocket.Conn, msg string, code int) {
	c.WriteMessage(websocket.TextMessage, []byte(msg))
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
	drain(c)
}

func wsType(name, endpoint string) *policy.Streamtype {
	return &policy.Streamtype{Name: name, Protocol: policy.WS, Endpoint: endpoint, ClientCert: -1}
}

func newRuntime(t *testing.T, sts ...*policy.Streamtype) *ss.Runtime {
	t.Helper()
	rt, err := ss.New(context.Background(), ss.Config{Policy: &policy.Policy{SchemaVersion: 1, Streamtypes: sts}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		if n := rt.Stats().IllegalTransitions; n != 0 {
			t.Errorf("IllegalTransitions = %d, want 0", n)
		}
	})
	return rt
}

// recorder reads a stream's events and renders them as STATE or
// rx(FLAGS,"data").
type recorder struct {
	t  *testing.T
	s  *ss.Stream
	ev []string
}

func (r *recorder) until(d time.Duration, want string) {
	r.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-r.s.Events():
			if !ok {
				r.t.Fatalf("channel closed waiting for %s; events %s", want, r)
			}
			var e string
			if ev.Kind == ss.StateEvent {
				e = ev.State.String()
			} else {
				e = fmt.Sprintf("rx(%s,%q)", ev.Flags, ev.Payload)
			}
			r.ev = append(r.ev, e)
			if e == want {
				return
			}
		case <-timer.C:
			r.t.Fatalf("timeout waiting for %s; events %s", want, r)
		}
	}
}

// quiet checks that nothing arrives for d.
func (r *recorder) quiet(d time.Duration) {
	r.t.Helper()
	select {
	case ev := <-r.s.Events():
		r.t.Fatalf("unexpected %v after %s", ev, r)
	case <-time.After(d):
	}
}

func (r *recorder) String() string { return strings.Join(r.ev, ", ") }

func (r *recorder) expect(want ...string) {
	r.t.Helper()
	if got := r.String(); got != strings.Join(want, ", ") {
		r.t.Fatalf("events:\n got  %s\n want %s", got, strings.Join(want, ", "))
	}
}

func (r *recorder) destroy() {
	r.t.Helper()
	if err := r.s.Destroy(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.until(wait, "DESTROYING")
	select {
	case ev, ok := <-r.s.Events():
		if ok {
			r.t.Fatalf("event after DESTROYING: %v", ev)
		}
	case <-time.After(wait):
		r.t.Fatal("channel not closed after DESTROYING")
	}
}

func create(t *testing.T, rt *ss.Runtime, name string) *recorder {
	t.Helper()
	s, err := rt.Create(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return &recorder{t: t, s: s}
}

// TestE2ENailedUpReconnects: nailed_up ws, server closes, conceal ≥ 1.
func TestE2ENailedUpReconnects(t *testing.T) {
	srv := newServer(t, func(i int, c *websocket.Conn) {
		if i == 0 {
			sendAndClose(c, "hello", 4000)
			return
		}
		c.WriteMessage(websocket.TextMessage, []byte("again"))
		drain(c)
	})
	st := wsType("nailed", srv.hostPort())
	st.NailedUp = true
	st.Retry = &policy.Retry{Name: "r", Backoff: []uint32{50}, Conceal: 3}
	r := create(t, newRuntime(t, st), "nailed")
	r.until(wait, `rx(SOM|EOM,"again")`)
	r.destroy()
	r.expect("CREATING", "CONNECTING", "CONNECTED", `rx(SOM|EOM,"hello")`, "DISCONNECTED",
		"POLL", "CONNECTING", "CONNECTED", `rx(SOM|EOM,"again")`, "DISCONNECTED", "DESTROYING")
}

// TestE2EOpportunistic: same, opportunistic (started with Connect: a
// nailed_up stream reconnects even when opportunistic): nothing after
// DISCONNECTED.
func TestE2EOpportunistic(t *testing.T) {
	srv := newServer(t, func(i int, c *websocket.Conn) { sendAndClose(c, "hello", 1000) })
	st := wsType("opp", srv.hostPort())
	st.Opportunistic = true
	st.Retry = &policy.Retry{Name: "r", Backoff: []uint32{50}, Conceal: 3}
	r := create(t, newRuntime(t, st), "opp")
	r.s.Connect()
	r.until(wait, "DISCONNECTED")
	r.quiet(300 * time.Millisecond)
	r.destroy()
	r.expect("CREATING", "CONNECTING", "CONNECTED", `rx(SOM|EOM,"hello")`, "DISCONNECTED", "DESTROYING")
	if n := srv.n.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// TestE2ENoRetry: ws with no retry key, server closes.
func TestE2ENoRetry(t *testing.T) {
	srv := newServer(t, func(i int, c *websocket.Conn) { sendAndClose(c, "bye", 1000) })
	st := wsType("noretry", srv.hostPort())
	st.NailedUp = true
	r := create(t, newRuntime(t, st), "noretry")
	r.until(wait, "ALL_RETRIES_FAILED")
	r.quiet(100 * time.Millisecond)
	r.destroy()
	r.expect("CREATING", "CONNECTING", "CONNECTED", `rx(SOM|EOM,"bye")`, "DISCONNECTED", "ALL_RETRIES_FAILED", "DESTROYING")
}

// TestE2ESendWriteAndMetadata: Send and fragmented Write reach the server as
// whole messages; the handshake response header is captured.
func TestE2ESendWriteAndMetadata(t *testing.T) {
	got := make(chan string, 4)
	srv := newServer(t, func(i int, c *websocket.Conn) {
		for {
			mt, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			got <- fmt.Sprintf("%d:%s", mt, p)
			c.WriteMessage(mt, p)
		}
	})
	st := wsType("echo", srv.hostPort())
	st.WSBinary = true
	st.Metadata = []*policy.MetadataItem{{Name: "srv", Header: "x-srv", HeaderRaw: "x-srv:", Index: 0}}
	r := create(t, newRuntime(t, st), "echo")
	ctx := context.Background()
	if err := r.s.Send(ctx, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	r.until(wait, `rx(SOM|EOM,"hi")`)
	if v, _ := r.s.Metadata("srv"); v != "v1" {
		t.Errorf("metadata srv = %q, want v1 (from the handshake response)", v)
	}
	for _, w := range []struct {
		p string
		f ss.Flags
	}{{"fr", ss.SOM}, {"ag", 0}, {"ment", ss.EOM}} {
		if err := r.s.Write(ctx, []byte(w.p), w.f); err != nil {
			t.Fatal(err)
		}
	}
	r.until(wait, `rx(SOM|EOM,"fragment")`)
	for _, want := range []string{"2:hi", "2:fragment"} {
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("server got %q, want %q", g, want)
			}
		case <-time.After(wait):
			t.Fatalf("server did not get %q", want)
		}
	}
	r.destroy()
	r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(SOM|EOM,"hi")`, `rx(SOM|EOM,"fragment")`,
		"DISCONNECTED", "DESTROYING")
}

// TestE2EValidity: svalidping 1 s / svalidhup 2 s through the runtime's
// timer: a server that never answers PINGs is dropped after ~2 s.
func TestE2EValidity(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 2 s")
	}
	pinged := make(chan struct{}, 4)
	srv := newServer(t, func(i int, c *websocket.Conn) {
		c.SetPingHandler(func(string) error { pinged <- struct{}{}; return nil })
		drain(c)
	})
	st := wsType("valid", srv.hostPort())
	st.Opportunistic = true
	st.Retry = &policy.Retry{Name: "r", Backoff: []uint32{50}, Conceal: 1, SValidPing: 1, SValidHup: 2}
	r := create(t, newRuntime(t, st), "valid")
	// start before Connect: the hup timer runs from the connection, and
	// CONNECTED may reach a slow reader late.
	start := time.Now()
	r.s.Connect()
	r.until(wait, "CONNECTED")
	r.until(wait, "DISCONNECTED")
	if el := time.Since(start); el < 1800*time.Millisecond {
		t.Errorf("dropped after %v, want ≈ 2 s", el)
	}
	if len(pinged) == 0 {
		t.Error("no PING sent")
	}
	r.destroy()
	r.expect("CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "DESTROYING")
}
