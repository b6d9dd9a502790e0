package test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
)

// logRecords is a slog.Handler keeping the records at or above WARN.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecords) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelWarn }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Clone())
	l.mu.Unlock()
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

// attempts returns, per "ss: attempt failed" record, its attributes.
func (l *logRecords) failed() []map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]string
	for _, r := range l.recs {
		if r.Message != "ss: attempt failed" {
			continue
		}
		m := map[string]string{"level": r.Level.String()}
		r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
		out = append(out, m)
	}
	return out
}

// failOnce creates a stream of st's streamtype, asks for tx and returns
// the Err of its first UNREACHABLE and of ALL_RETRIES_FAILED (retry: none).
func failOnce(t *testing.T, cfg ss.Config, name string) (unreachable, final error, s *ss.Stream) {
	t.Helper()
	rt := newRuntime(t, cfg)
	ctx := context.Background()
	s, err := rt.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	if err := s.RequestTx(); err != nil {
		t.Fatal(err)
	}
	u := r.untilState(wait, ss.Unreachable)
	f := r.untilState(wait, ss.AllRetriesFailed)
	if err := s.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	r.closed(wait)
	return u.Err, f.Err, s
}

// TestErrRefused: a refused connection is UNREACHABLE with the
// *net.OpError (ECONNREFUSED) in Event.Err, ALL_RETRIES_FAILED carries it
// too, Stats.LastError keeps it, and the failed attempt is logged once at
// WARN with the stream id, streamtype, attempt number and cause.
func TestErrRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refusing.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the socket file stays: connecting is refused
	logs := &logRecords{}
	u, f, s := failOnce(t, ss.Config{Policy: newPolicy(rawType("refused", "+"+path, 0)), Logger: slog.New(logs)}, "refused")
	var oe *net.OpError
	if !errors.As(u, &oe) || !errors.Is(u, syscall.ECONNREFUSED) {
		t.Fatalf("UNREACHABLE Err = %v (%T), want a *net.OpError with ECONNREFUSED", u, u)
	}
	if !errors.As(f, &oe) {
		t.Fatalf("ALL_RETRIES_FAILED Err = %v, want the *net.OpError", f)
	}
	if last := s.Stats().LastError; !errors.Is(last, syscall.ECONNREFUSED) {
		t.Fatalf("Stats.LastError = %v, want the refusal", last)
	}
	recs := logs.failed()
	if len(recs) != 1 {
		t.Fatalf("%d \"attempt failed\" log records, want 1: %v", len(recs), recs)
	}
	rec := recs[0]
	if rec["level"] != "WARN" || rec["streamtype"] != "refused" || rec["attempt"] != "1" || rec["stream"] == "" ||
		!strings.Contains(rec["err"], "refused") {
		t.Fatalf("log record %v, want WARN with stream, streamtype=refused, attempt=1 and the cause", rec)
	}
}

// TestErrWrongCA: a server certificate from another CA fails with the
// *tls.CertificateVerificationError, and the message names the
// certificate's subject.
func TestErrWrongCA(t *testing.T) {
	srv := tlsEcho(t, testutil.NewCA(t))
	other := testutil.NewCA(t)
	st := rawType("wrongca", "127.0.0.1", srv.Port())
	st.TLS = true
	st.TrustStore = other.TrustStore("other")
	st.TrustStoreName = "other"
	u, _, _ := failOnce(t, ss.Config{Policy: newPolicy(st)}, "wrongca")
	var cve *tls.CertificateVerificationError
	if !errors.As(u, &cve) {
		t.Fatalf("UNREACHABLE Err = %v, want a *tls.CertificateVerificationError", u)
	}
	if !strings.Contains(u.Error(), "CN=localhost") {
		t.Fatalf("Err %q does not name the certificate subject CN=localhost", u)
	}
}

// TestErrHTTP503: a 503 fails the attempt with *ss.StatusError{Code: 503}.
func TestErrHTTP503(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer hs.Close()
	port, _ := strconv.Atoi(hs.URL[strings.LastIndexByte(hs.URL, ':')+1:])
	u, f, s := failOnce(t, ss.Config{Policy: newPolicy(h1Type("busy", port, "GET", "/"))}, "busy")
	var se *ss.StatusError
	if !errors.As(u, &se) || se.Code != 503 {
		t.Fatalf("UNREACHABLE Err = %v, want *ss.StatusError 503", u)
	}
	if !errors.As(f, &se) || !errors.As(s.Stats().LastError, &se) {
		t.Fatalf("ALL_RETRIES_FAILED Err %v / LastError %v, want the 503", f, s.Stats().LastError)
	}
}

// TestErrHTTPNack: a status http_expect does not accept completes the
// transaction with QOS_NACK_REMOTE; the DISCONNECTED after it carries the
// *ss.StatusError.
func TestErrHTTPNack(t *testing.T) {
	hs := httptest.NewServer(http.NotFoundHandler())
	defer hs.Close()
	port, _ := strconv.Atoi(hs.URL[strings.LastIndexByte(hs.URL, ':')+1:])
	rt := newRuntime(t, ss.Config{Policy: newPolicy(h1Type("missing", port, "GET", "/"))})
	ctx := context.Background()
	s, err := rt.Create(ctx, "missing")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	s.RequestTx()
	d := r.untilState(wait, ss.Disconnected)
	var se *ss.StatusError
	if !errors.As(d.Err, &se) || se.Code != 404 {
		t.Fatalf("DISCONNECTED Err = %v, want *ss.StatusError 404", d.Err)
	}
	s.Destroy(ctx)
	r.closed(wait)
	r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(SOM,"404 page not found\n")`, `rx(EOM,"")`,
		"QOS_NACK_REMOTE", "DISCONNECTED", "DESTROYING")
}

// refuseAll is a mochi hook refusing every client (CONNACK 5, not
// authorized, in MQTT 3.1.1).
type refuseAll struct{ mochi.HookBase }

func (h *refuseAll) ID() string                                               { return "refuse-all" }
func (h *refuseAll) Provides(b byte) bool                                     { return b == mochi.OnConnectAuthenticate }
func (h *refuseAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return false }

// TestErrConnack5: a broker refusing the client fails the attempt with
// *ss.ConnackError{Code: 5}.
func TestErrConnack5(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(refuseAll), nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewNet("t", ln)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ln.Close()
		done := make(chan struct{})
		go func() { srv.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("mochi Close hung")
		}
	})
	st := mqttType("refusedmqtt", ln.Addr().String(), func(st *policy.Streamtype) { st.MQTTTopic = "t" })
	u, _, _ := failOnce(t, ss.Config{Policy: newPolicy(st)}, "refusedmqtt")
	var ce *ss.ConnackError
	if !errors.As(u, &ce) || ce.Code != 5 {
		t.Fatalf("UNREACHABLE Err = %v, want *ss.ConnackError 5", u)
	}
}

// TestErrProxyLinkLost: a proxied stream whose link to the proxy is lost
// while connected reports DISCONNECTED with ss.ErrProxyLinkLost.
func TestErrProxyLinkLost(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	pol := newPolicy(rawType("echo", "127.0.0.1", srv.Port()))
	prt := newRuntime(t, ss.Config{Policy: pol})
	name := abstractName()
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	stop := serveProxy(t, prt, ln)
	rt := newRuntime(t, ss.Config{Proxy: "unix:" + name})
	ctx := context.Background()
	s, err := rt.Create(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	if err := s.Send(ctx, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	r.untilBytes(wait, 2)
	stop() // the proxy closes its links
	d := r.untilState(wait, ss.Disconnected)
	if !errors.Is(d.Err, ss.ErrProxyLinkLost) {
		t.Fatalf("DISCONNECTED Err = %v, want ss.ErrProxyLinkLost", d.Err)
	}
	if !errors.Is(s.Stats().LastError, ss.ErrProxyLinkLost) {
		t.Fatalf("Stats.LastError = %v, want ss.ErrProxyLinkLost", s.Stats().LastError)
	}
	s.Destroy(ctx)
	r.closed(wait)
}

// TestErrMQTTNack: an MQTT NACK carries its cause in Event.Err (here a
// topic holding a wildcard, which is not sent).
func TestErrMQTTNack(t *testing.T) {
	ctx := context.Background()
	s, r := mqttPublisher(t, "up/+")
	if err := s.Send(ctx, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	ev := r.untilState(wait, ss.QoSNackLocal)
	if ev.Ack != 1 || ev.Err == nil || !strings.Contains(ev.Err.Error(), "not sent") {
		t.Fatalf("NACK %v, Err %v", ev, ev.Err)
	}
	s.Destroy(ctx)
	r.closed(wait)
}

// TestMQTTTxLenMismatch: SetTxLen announces the next message's length; a
// Send of another length is not published (QOS_NACK_LOCAL with its cause),
// and the announced length does not carry over to the message after it
// (docs/streams.md §11.5.3).
func TestMQTTTxLenMismatch(t *testing.T) {
	ctx := context.Background()
	s, r := mqttPublisher(t, "up/x")
	if err := s.SetTxLen(5); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	ev := r.untilState(wait, ss.QoSNackLocal)
	if ev.Ack != 1 || ev.Err == nil {
		t.Fatalf("NACK %v, Err %v: want message 1 refused with a cause", ev, ev.Err)
	}
	if err := s.Send(ctx, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	// QoS 0: a message written is QOS_ACK_LOCAL.
	ev = r.until(wait, func(ev ss.Event) bool { return ev.Kind == ss.StateEvent && ev.Ack == 2 })
	if ev.State != ss.QoSAckLocal {
		t.Fatalf("message 2: %v (Err %v), want QOS_ACK_LOCAL", ev, ev.Err)
	}
	s.Destroy(ctx)
	r.closed(wait)
}
