package httpc_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
)

// End-to-end: ss.New / Create / Events over the h1, h2 and h3 client
// transports, asserting the docs/streams.md §5.8 sequences.

const wait = 10 * time.Second

// e2eServer is a loopback HTTP server (h1 or h2 over TLS, or h3).
type e2eServer struct {
	port int
	ca   *testutil.CA
}

func e2eHandler(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/get":
		io.WriteString(w, "hello "+r.Proto)
	case "/404":
		w.WriteHeader(404)
		io.WriteString(w, "nope")
	case "/530":
		w.WriteHeader(530)
		io.WriteString(w, "mapped")
	case "/204":
		w.WriteHeader(204)
	case "/post":
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "got "+strconv.Itoa(len(b))+" cl="+strconv.FormatInt(r.ContentLength, 10))
	case "/redirect":
		http.Redirect(w, r, "/get", http.StatusFound)
	case "/hang-head", "/hang-body":
		// Headers and part of a longer body (or nothing), then nothing
		// more until the client goes (TestE2EDestroyMidExchange).
		if r.URL.Path == "/hang-body" {
			w.Header().Set("Content-Length", "100000")
			w.WriteHeader(200)
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
		}
		select {
		case hangArrived <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	}
}

// hangArrived receives a value when a /hang-* request has reached the
// handler.
var hangArrived = make(chan struct{}, 1)

func startE2E(t *testing.T, proto policy.Protocol) *e2eServer {
	t.Helper()
	ca := testutil.NewCA(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf(t, ca)}}
	s := &e2eServer{ca: ca}
	if proto == policy.H3 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http3.Server{Handler: http.HandlerFunc(e2eHandler), TLSConfig: http3.ConfigureTLSConfig(cfg), Logger: slog.New(slog.DiscardHandler)}
		done := make(chan struct{})
		go func() { defer close(done); hs.Serve(pc) }()
		s.port = pc.LocalAddr().(*net.UDPAddr).Port
		t.Cleanup(func() { hs.Close(); pc.Close(); <-done })
		return s
	}
	hts := httptest.NewUnstartedServer(http.HandlerFunc(e2eHandler))
	hts.Config.ErrorLog = log.New(io.Discard, "", 0)
	hts.TLS = cfg
	hts.EnableHTTP2 = proto == policy.H2
	hts.StartTLS()
	t.Cleanup(hts.Close)
	s.port = hts.Listener.Addr().(*net.TCPAddr).Port
	return s
}

func leaf(t *testing.T, ca *testutil.CA) tls.Certificate {
	t.Helper()
	return ca.Issue(t, "localhost", "127.0.0.1").TLSCert
}

func (s *e2eServer) streamtype(name string, proto policy.Protocol, url string) *policy.Streamtype {
	return &policy.Streamtype{
		Name: name, Protocol: proto, Endpoint: "127.0.0.1", Port: uint16(s.port), TLS: true,
		TrustStoreName: "ca", TrustStore: &policy.TrustStore{Name: "ca", Pool: s.ca.Pool},
		ClientCert: -1, HTTPMethod: "GET", HTTPURL: url,
	}
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

// recorder reads a stream's events as STATE or rx(FLAGS,"data").
type recorder struct {
	t  *testing.T
	s  *ss.Stream
	ev []string
}

func create(t *testing.T, rt *ss.Runtime, name string) *recorder {
	t.Helper()
	s, err := rt.Create(context.Background(), name)
	if errors.Is(err, ss.ErrUnsupportedProtocol) {
		t.Skipf("httpc is not registered in the ss protocol registry: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &recorder{t: t, s: s}
}

func (r *recorder) until(want string) {
	r.t.Helper()
	timer := time.NewTimer(wait)
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
	r.until("DESTROYING")
	select {
	case ev, ok := <-r.s.Events():
		if ok {
			r.t.Fatalf("event after DESTROYING: %v", ev)
		}
	case <-time.After(wait):
		r.t.Fatal("channel not closed after DESTROYING")
	}
}

func TestE2EGet(t *testing.T) {
	for _, p := range []policy.Protocol{policy.H1, policy.H2, policy.H3} {
		t.Run(p.String(), func(t *testing.T) {
			srv := startE2E(t, p)
			rt := newRuntime(t, srv.streamtype("get", p, "/get"))
			r := create(t, rt, "get")
			if err := r.s.RequestTx(); err != nil {
				t.Fatal(err)
			}
			r.until("DISCONNECTED")
			proto := map[policy.Protocol]string{policy.H1: "HTTP/1.1", policy.H2: "HTTP/2.0", policy.H3: "HTTP/3.0"}[p]
			r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(SOM,"hello `+proto+`")`, `rx(EOM,"")`, "QOS_ACK_REMOTE", "DISCONNECTED")
			r.destroy()
		})
	}
}

func TestE2EStatuses(t *testing.T) {
	for _, p := range []policy.Protocol{policy.H1, policy.H2, policy.H3} {
		t.Run(p.String(), func(t *testing.T) {
			srv := startE2E(t, p)
			nf := srv.streamtype("404", p, "/404")
			mapped := srv.streamtype("530", p, "/530")
			mapped.HTTPRespMap = []policy.RespMapEntry{{Status: 530, State: 1530}}
			expect := srv.streamtype("204", p, "/204")
			expect.HTTPExpect = 204
			rt := newRuntime(t, nf, mapped, expect)

			r := create(t, rt, "404")
			r.s.RequestTx()
			r.until("DISCONNECTED")
			r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(SOM,"nope")`, `rx(EOM,"")`, "QOS_NACK_REMOTE", "DISCONNECTED")
			r.destroy()

			r = create(t, rt, "530")
			r.s.RequestTx()
			r.until("DISCONNECTED")
			r.expect("CREATING", "POLL", "CONNECTING", "USER(1530)", "CONNECTED", `rx(SOM,"mapped")`, `rx(EOM,"")`, "QOS_NACK_REMOTE", "DISCONNECTED")
			r.destroy()

			r = create(t, rt, "204")
			r.s.RequestTx()
			r.until("DISCONNECTED")
			r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE", "DISCONNECTED")
			r.destroy()
		})
	}
}

func TestE2EPost(t *testing.T) {
	for _, p := range []policy.Protocol{policy.H1, policy.H2, policy.H3} {
		t.Run(p.String(), func(t *testing.T) {
			srv := startE2E(t, p)
			st := srv.streamtype("post", p, "/post")
			st.HTTPMethod = "POST"
			rt := newRuntime(t, st)
			r := create(t, rt, "post")
			ctx := context.Background()
			if err := r.s.SetTxLen(2500); err != nil {
				t.Fatal(err)
			}
			go func() {
				r.s.Write(ctx, make([]byte, 1000), ss.SOM)
				r.s.Write(ctx, make([]byte, 1000), 0)
				r.s.Write(ctx, make([]byte, 500), ss.EOM)
			}()
			r.until("DISCONNECTED")
			r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(SOM,"got 2500 cl=2500")`, `rx(EOM,"")`, "QOS_ACK_REMOTE", "DISCONNECTED")
			// Send: a whole message of known length.
			r.ev = nil
			if err := r.s.Send(ctx, []byte("hello")); err != nil {
				t.Fatal(err)
			}
			r.until("DISCONNECTED")
			r.expect("POLL", "CONNECTING", "CONNECTED", `rx(SOM,"got 5 cl=5")`, `rx(EOM,"")`, "QOS_ACK_REMOTE", "DISCONNECTED")
			r.destroy()
		})
	}
}

func TestE2EWrongCA(t *testing.T) {
	for _, p := range []policy.Protocol{policy.H1, policy.H2, policy.H3} {
		t.Run(p.String(), func(t *testing.T) {
			srv := startE2E(t, p)
			st := srv.streamtype("bad", p, "/get")
			st.TrustStore = &policy.TrustStore{Name: "other", Pool: testutil.NewCA(t).Pool}
			rt := newRuntime(t, st)
			r := create(t, rt, "bad")
			r.s.RequestTx()
			r.until("ALL_RETRIES_FAILED")
			r.expect("CREATING", "POLL", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED")
			r.destroy()
		})
	}
}

func TestE2ERedirectRefused(t *testing.T) {
	srv := startE2E(t, policy.H1)
	st := srv.streamtype("redir", policy.H1, "/redirect")
	st.Retry = &policy.Retry{Name: "r", Backoff: []uint32{50}, Conceal: 1, JitterPct: 0}
	rt := newRuntime(t, st)
	r := create(t, rt, "redir")
	r.s.RequestTx()
	r.until("ALL_RETRIES_FAILED")
	r.expect("CREATING", "POLL", "CONNECTING", "UNREACHABLE", "POLL", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED")
	r.destroy()
}

// TestE2ESecondTransaction: RequestTx after DISCONNECTED starts the next
// transaction (docs/streams.md §11.2.4), fifty times in a row. It guards against
// the runtime losing a RequestTx made between the DISCONNECTED emission and
// the stream going idle (a race it once had).
func TestE2ESecondTransaction(t *testing.T) {
	srv := startE2E(t, policy.H2)
	rt := newRuntime(t, srv.streamtype("get", policy.H2, "/get"))
	r := create(t, rt, "get")
	for i := 0; i < 50; i++ {
		r.ev = nil
		if err := r.s.RequestTx(); err != nil {
			t.Fatal(err)
		}
		r.until("DISCONNECTED")
		want := []string{"POLL", "CONNECTING", "CONNECTED", `rx(SOM,"hello HTTP/2.0")`, `rx(EOM,"")`, "QOS_ACK_REMOTE", "DISCONNECTED"}
		if i == 0 {
			want = append([]string{"CREATING"}, want...)
		}
		r.expect(want...)
	}
	r.destroy()
}

// TestE2EDestroyMidExchange: Destroy while the response head is awaited,
// or in the middle of the body, ends the transaction at once through the
// attempt's cut (the transport's connection, not a timer): the body read
// so far is delivered, then no EOM and no QOS_ACK_REMOTE, DESTROYING last,
// and the channel closes.
func TestE2EDestroyMidExchange(t *testing.T) {
	for _, proto := range []policy.Protocol{policy.H1, policy.H2, policy.H3} {
		for _, path := range []string{"/hang-head", "/hang-body"} {
			t.Run(proto.String()+path, func(t *testing.T) {
				srv := startE2E(t, proto)
				rt := newRuntime(t, srv.streamtype("hang", proto, path))
				r := create(t, rt, "hang")
				if err := r.s.RequestTx(); err != nil {
					t.Fatal(err)
				}
				if path == "/hang-body" {
					r.until(`rx(SOM,"partial")`)
				}
				select {
				case <-hangArrived:
				case <-time.After(wait):
					t.Fatalf("the request did not reach the server; events %s", r)
				}
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				t0 := time.Now()
				if err := r.s.Destroy(ctx); err != nil {
					t.Fatalf("Destroy: %v; events %s", err, r)
				}
				if d := time.Since(t0); d > wait/2 {
					t.Fatalf("Destroy took %v", d)
				}
				r.until("DESTROYING")
				for _, e := range r.ev {
					if e == `rx(EOM,"")` || e == "QOS_ACK_REMOTE" || e == "QOS_NACK_REMOTE" {
						t.Fatalf("%s delivered for a cut transaction; events %s", e, r)
					}
				}
				if path == "/hang-body" && !strings.Contains(r.String(), `CONNECTED, rx(SOM,"partial")`) {
					t.Fatalf("events %s", r)
				}
				select {
				case ev, ok := <-r.s.Events():
					if ok {
						t.Fatalf("event after DESTROYING: %v", ev)
					}
				case <-time.After(wait):
					t.Fatal("channel not closed after DESTROYING")
				}
			})
		}
	}
}
