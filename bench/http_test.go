package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/internal/transport/httpc"
	"github.com/securestreams/ss/policy"
)

// The HTTP client pairs: GET of a 1 KiB body from the same loopback server
// in the same run.
//
//   - /ss: one transaction per op on a long-lived ss stream (RequestTx,
//     events up to DISCONNECTED) over the h1/h2/h3 client transport;
//     /ss-create makes a stream per transaction (Create ... Destroy). When
//     the runtime has no h1/h2/h3 registration yet both fall back to
//     /transport (and say so in the log).
//   - /transport: the httpc Protocol's Run driven directly with a minimal
//     Sink (no stream actor), to split the runtime's cost from the
//     transport's.
//   - /raw: the library underneath: net/http (h1, keep-alives off, since ss
//     h1 uses one connection per transaction), x/net/http2 (h2, one shared
//     TLS connection) and quic-go http3 (h3, one shared QUIC connection).
//     It reads the body to EOF, as ss must (its EOM and QOS_ACK_REMOTE
//     come from the end of the body; a body closed after its declared
//     length without reading EOF may cancel the h2/h3 stream instead).
//
// Client settings are the same on both sides: h1 a new TCP connection per
// transaction; h2 and h3 one connection shared by every transaction (ss's
// per-identity pool, idle-closed after 60 s, and the raw transport's own
// pool), compression off. Where they differ, and why: ss's h2 connections
// have ReadIdleTimeout 30 s / PingTimeout 15 s and its QUIC connections
// KeepAlivePeriod 15 s (the validity keep-alive of docs/streams.md §7);
// neither sends anything while transactions keep the connection busy.
//
// BenchmarkPairH[123]Get1KiB run raw, chan, transport and ss interleaved
// in one benchmark (runPair), so load swings hit all of them; their ss/raw
// time ratio is the inverse of the rate ratio the goal is written in.
//
//	go test -run XXX -bench 'H[123]Get1KiB' -count 5 ./bench/
//	go test -run XXX -bench 'PairH[123]Get1KiB' -count 6 ./bench/

var httpBody = make([]byte, 1024)

type httpBenchServer struct {
	port int
	pool *x509.CertPool
}

// newHTTPBenchServer serves 1 KiB bodies: plain h1, TLS h1+h2, or h3.
func newHTTPBenchServer(b *testing.B, proto policy.Protocol) *httpBenchServer {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1024")
		w.Write(httpBody)
	})
	s := &httpBenchServer{}
	var cert tls.Certificate
	s.pool, cert = httpBenchCA(b)
	switch proto {
	case policy.H3:
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		hs := &http3.Server{Handler: h, TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}), Logger: slog.New(slog.DiscardHandler)}
		done := make(chan struct{})
		go func() { defer close(done); hs.Serve(pc) }()
		s.port = pc.LocalAddr().(*net.UDPAddr).Port
		b.Cleanup(func() { hs.Close(); pc.Close(); <-done })
	default:
		hts := httptest.NewUnstartedServer(h)
		hts.Config.ErrorLog = log.New(io.Discard, "", 0)
		if proto == policy.H2 {
			hts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
			hts.EnableHTTP2 = true
			hts.StartTLS()
		} else {
			hts.Start()
		}
		s.port = hts.Listener.Addr().(*net.TCPAddr).Port
		b.Cleanup(hts.Close)
	}
	return s
}

func httpBenchCA(b *testing.B) (*x509.CertPool, tls.Certificate) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	lkey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ltmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	lder, err := x509.CreateCertificate(rand.Reader, ltmpl, ca, &lkey.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, tls.Certificate{Certificate: [][]byte{lder}, PrivateKey: lkey}
}

func (s *httpBenchServer) streamtype(proto policy.Protocol) *policy.Streamtype {
	st := &policy.Streamtype{Name: "httpbench", Protocol: proto, Endpoint: "127.0.0.1", Port: uint16(s.port),
		ClientCert: -1, HTTPMethod: "GET", HTTPURL: "/1k"}
	if proto != policy.H1 {
		st.TLS = true
		st.TrustStoreName = "ca"
		st.TrustStore = &policy.TrustStore{Name: "ca", Pool: s.pool}
	}
	return st
}

// httpSink counts body bytes and remembers the final QoS state.
type httpSink struct {
	n   int
	ack bool
	log *slog.Logger
}

func (s *httpSink) State(st event.State, _ uint32) {
	if st == event.QoSAckRemote {
		s.ack = true
	}
}
func (s *httpSink) SetMetadata(string, string) {}
func (s *httpSink) ValidityConfirmed()         {}
func (s *httpSink) Logger() *slog.Logger       { return s.log }
func (s *httpSink) Rx(_ context.Context, data []byte, _ event.Flags) error {
	s.n += len(data)
	return nil
}

type noTx struct{}

func (noTx) Next(ctx context.Context) (transport.Chunk, error) {
	<-ctx.Done()
	return transport.Chunk{}, ctx.Err()
}
func (noTx) Pending() bool  { return false }
func (noTx) LenHint() int64 { return -1 }

func benchHTTPTransport(b *testing.B, proto policy.Protocol, srv *httpBenchServer) {
	env := transport.Env{}.Defaults()
	p := httpc.New(proto, env)
	b.Cleanup(func() { p.Close(context.Background()) })
	st := srv.streamtype(proto)
	a := &transport.Attempt{Policy: &policy.Policy{}, Type: st, Tx: noTx{}, Env: env}
	sink := &httpSink{log: env.Logger}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		sink.n, sink.ack = 0, false
		res := p.Run(ctx, a, sink)
		if res.Err != nil || sink.n != 1024 || !sink.ack {
			b.Fatalf("result %+v, %d bytes, ack %v", res, sink.n, sink.ack)
		}
	}
}

// httpRuntime returns a runtime for st, or nil when it has no registration
// for st's protocol yet.
func httpRuntime(b *testing.B, st *policy.Streamtype) *ss.Runtime {
	rt, err := ss.New(context.Background(), ss.Config{Policy: &policy.Policy{SchemaVersion: 1, Streamtypes: []*policy.Streamtype{st}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Close(ctx)
	})
	s, err := rt.Create(context.Background(), st.Name)
	if errors.Is(err, ss.ErrUnsupportedProtocol) {
		b.Log("no " + st.Protocol.String() + " registration in the ss runtime: measuring the Protocol directly")
		return nil
	}
	if err != nil {
		b.Fatal(err)
	}
	s.Destroy(context.Background())
	for range s.Events() {
	}
	return rt
}

// benchHTTPss runs one transaction per op on one long-lived stream
// (RequestTx, events up to DISCONNECTED). A transaction that has not ended
// after 50 ms gets a second RequestTx, counted as a "kick" (a guard from
// when a RequestTx right after DISCONNECTED could go unserved;
// internal/stream's TestTransactionLoopServesEveryRequestTx checks it no
// longer does). Kicks seen since come from GETs slower than 50 ms on a
// loaded machine: the extra request is served as the next transaction, so
// one transaction runs ahead and each op still waits for one.
func benchHTTPss(b *testing.B, proto policy.Protocol, srv *httpBenchServer) {
	st := srv.streamtype(proto)
	rt := httpRuntime(b, st)
	if rt == nil {
		benchHTTPTransport(b, proto, srv)
		return
	}
	t := openSSTxn(b, rt, st.Name)
	b.ReportAllocs()
	for b.Loop() {
		if err := t.get(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(t.kickCount(), "kicks")
}

// benchHTTPssRecv is benchHTTPss reading the events with Stream.Recv.
func benchHTTPssRecv(b *testing.B, proto policy.Protocol, srv *httpBenchServer) {
	st := srv.streamtype(proto)
	rt := httpRuntime(b, st)
	if rt == nil {
		b.Skip("no " + proto.String() + " registration in the ss runtime")
	}
	t := openSSTxn(b, rt, st.Name)
	t.pull = true
	b.ReportAllocs()
	for b.Loop() {
		if err := t.get(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(t.kickCount(), "kicks")
}

// ssTxn runs GETs on one long-lived stream.
type ssTxn struct {
	s     *ss.Stream
	kick  *time.Timer
	kicks int
	pull  bool // read the events with Stream.Recv (set before the first get)
	// getRecv's kick: a timer that fires on a goroutine of its own, and
	// the ctx of every Recv (cancellable, as an application's would be,
	// but made once: the Events side makes none per GET either).
	recvKick  *time.Timer
	recvKicks atomic.Int64
	recvCtx   context.Context
}

// kickCount is the number of kicks either way of reading made.
func (t *ssTxn) kickCount() float64 { return float64(t.kicks) + float64(t.recvKicks.Load()) }

// openSSTxn creates a stream of streamtype name on rt and reads its
// CREATING; the stream is destroyed (and its events drained) at cleanup.
func openSSTxn(b *testing.B, rt *ss.Runtime, name string) *ssTxn {
	ctx := context.Background()
	s, err := rt.Create(ctx, name)
	if err != nil {
		b.Fatal(err)
	}
	t := &ssTxn{s: s, kick: time.NewTimer(time.Hour)}
	recvCtx, cancel := context.WithCancel(ctx)
	t.recvCtx = recvCtx
	t.recvKick = time.AfterFunc(time.Hour, func() {
		t.recvKicks.Add(1)
		s.RequestTx()
	})
	t.recvKick.Stop()
	b.Cleanup(func() {
		t.recvKick.Stop()
		cancel()
		s.Destroy(ctx)
		if t.pull {
			for _, err := s.Recv(ctx); err == nil; _, err = s.Recv(ctx) {
			}
			return
		}
		for range s.Events() {
		}
	})
	<-s.Events() // CREATING
	t.kick.Stop()
	return t
}

// get is one transaction: RequestTx, then the events up to DISCONNECTED,
// checking the body and QOS_ACK_REMOTE.
func (t *ssTxn) get() error {
	s := t.s
	if t.pull {
		return t.getRecv()
	}
	if err := s.RequestTx(); err != nil {
		return err
	}
	t.kick.Reset(50 * time.Millisecond)
	defer t.kick.Stop()
	var g txnProgress
	for {
		select {
		case ev := <-s.Events():
			if done, err := g.see(ev); done {
				return err
			}
		case <-t.kick.C:
			t.kicks++
			s.RequestTx()
		}
	}
}

// txnProgress follows one transaction's events: the body's length and
// QOS_ACK_REMOTE.
type txnProgress struct {
	n   int
	ack bool
}

// see takes the next event; done at the transaction's end, with an error
// unless it brought 1024 bytes and QOS_ACK_REMOTE.
func (g *txnProgress) see(ev ss.Event) (done bool, err error) {
	if ev.Kind == ss.PayloadEvent {
		g.n += len(ev.Payload)
		return false, nil
	}
	switch ev.State {
	case ss.QoSAckRemote:
		g.ack = true
	case ss.Disconnected, ss.AllRetriesFailed:
		if g.n != 1024 || !g.ack {
			return true, fmt.Errorf("%d bytes, ack %v, last %v (%v)", g.n, g.ack, ev.State, ev.Err)
		}
		return true, nil
	}
	return false, nil
}

// getRecv is get reading with Stream.Recv: a transaction that has not
// ended after 50 ms is kicked as get's are, by a timer (recvKick) rather
// than a ctx per GET, which the Events side does not pay for.
func (t *ssTxn) getRecv() error {
	s := t.s
	if err := s.RequestTx(); err != nil {
		return err
	}
	t.recvKick.Reset(50 * time.Millisecond)
	defer t.recvKick.Stop()
	var g txnProgress
	for {
		ev, err := s.Recv(t.recvCtx)
		if err != nil {
			return err
		}
		if done, err := g.see(ev); done {
			return err
		}
	}
}

// benchHTTPssCreate makes one stream per transaction (Create, RequestTx,
// events up to DISCONNECTED, Destroy): the one-shot usage.
func benchHTTPssCreate(b *testing.B, proto policy.Protocol, srv *httpBenchServer) {
	st := srv.streamtype(proto)
	rt := httpRuntime(b, st)
	if rt == nil {
		benchHTTPTransport(b, proto, srv)
		return
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s, err := rt.Create(ctx, st.Name)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.RequestTx(); err != nil {
			b.Fatal(err)
		}
		n, ack := 0, false
		for ev := range s.Events() {
			if ev.Kind == ss.PayloadEvent {
				n += len(ev.Payload)
				continue
			}
			if ev.State == ss.QoSAckRemote {
				ack = true
			}
			if ev.State == ss.Disconnected || ev.State == ss.AllRetriesFailed {
				break
			}
		}
		if n != 1024 || !ack {
			b.Fatalf("%d bytes, ack %v", n, ack)
		}
		s.Destroy(ctx)
		for range s.Events() {
		}
	}
}

func benchHTTPraw(b *testing.B, rt http.RoundTripper, url string) {
	c := &http.Client{Transport: rt}
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		if err := rawGet(c, url, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// rawGet is one GET with the raw client, reading the body to EOF.
func rawGet(c *http.Client, url string, buf []byte) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	n := 0
	for {
		k, err := resp.Body.Read(buf)
		n += k
		if err == io.EOF {
			break
		}
		if err != nil {
			resp.Body.Close()
			return err
		}
	}
	resp.Body.Close()
	if n != 1024 || resp.StatusCode != 200 {
		return fmt.Errorf("%d bytes, status %d", n, resp.StatusCode)
	}
	return nil
}

// rawHTTPClient is the raw side's client for proto, with the settings the
// comment at the top describes; close releases its connections.
func rawHTTPClient(proto policy.Protocol, pool *x509.CertPool) (c *http.Client, close func()) {
	switch proto {
	case policy.H2:
		t := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableCompression: true}
		return &http.Client{Transport: t}, t.CloseIdleConnections
	case policy.H3:
		t := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableCompression: true}
		return &http.Client{Transport: t}, func() { t.Close() }
	default:
		t := &http.Transport{DisableKeepAlives: true, DisableCompression: true}
		return &http.Client{Transport: t}, t.CloseIdleConnections
	}
}

func httpBenchURL(proto policy.Protocol, srv *httpBenchServer) string {
	scheme := "https"
	if proto == policy.H1 {
		scheme = "http"
	}
	return scheme + "://127.0.0.1:" + strconv.Itoa(srv.port) + "/1k"
}

func benchHTTPGet(b *testing.B, proto policy.Protocol) {
	srv := newHTTPBenchServer(b, proto)
	b.Run("ss", func(b *testing.B) { benchHTTPss(b, proto, srv) })
	b.Run("ss-recv", func(b *testing.B) { benchHTTPssRecv(b, proto, srv) })
	b.Run("ss-create", func(b *testing.B) { benchHTTPssCreate(b, proto, srv) })
	b.Run("transport", func(b *testing.B) { benchHTTPTransport(b, proto, srv) })
	b.Run("raw", func(b *testing.B) {
		c, closeRaw := rawHTTPClient(proto, srv.pool)
		defer closeRaw()
		benchHTTPraw(b, c.Transport, httpBenchURL(proto, srv))
	})
}

func BenchmarkH1Get1KiB(b *testing.B) { benchHTTPGet(b, policy.H1) }
func BenchmarkH2Get1KiB(b *testing.B) { benchHTTPGet(b, policy.H2) }
func BenchmarkH3Get1KiB(b *testing.B) { benchHTTPGet(b, policy.H3) }

// benchPairHTTP: raw, chan (the channel-delivery floor), transport and ss
// GETs from one server interleaved (runPair). Metrics: the time ratio of
// every two sides (ss/raw, ss/chan, chan/raw, transport/raw, ...).
func benchPairHTTP(b *testing.B, proto policy.Protocol) {
	srv := newHTTPBenchServer(b, proto)
	ctx := context.Background()

	c, closeRaw := rawHTTPClient(proto, srv.pool)
	defer closeRaw()
	url := httpBenchURL(proto, srv)
	buf := make([]byte, 4096)
	rawSide := pairSide{"raw", func(n int) error {
		for range n {
			if err := rawGet(c, url, buf); err != nil {
				return err
			}
		}
		return nil
	}}

	// chan: the floor of any API that delivers a transaction as events
	// over a channel, run off the caller's goroutine: a worker goroutine
	// woken per GET (as ss runs each attempt) does the raw GET and sends
	// the seven events ss delivers (POLL, CONNECTING, CONNECTED, the body,
	// a zero-length EOM, QOS_ACK_REMOTE, DISCONNECTED) over an unbuffered
	// channel, the body copied out of the read buffer as ss does.
	cc, closeChan := rawHTTPClient(proto, srv.pool)
	defer closeChan()
	reqs := make(chan struct{})
	evs := make(chan floorEvent)
	go floorWorker(cc, url, reqs, evs)
	defer func() {
		close(reqs)
		for range evs {
		}
	}()
	chanSide := pairSide{"chan", func(n int) error {
		for range n {
			reqs <- struct{}{}
			got := 0
			for ev := range evs {
				if ev.err != nil {
					return ev.err
				}
				got += len(ev.data)
				if ev.last {
					break
				}
			}
			if got != 1024 {
				return fmt.Errorf("chan: %d bytes", got)
			}
		}
		return nil
	}}

	env := transport.Env{}.Defaults()
	p := httpc.New(proto, env)
	defer p.Close(ctx)
	st := srv.streamtype(proto)
	a := &transport.Attempt{Policy: &policy.Policy{}, Type: st, Tx: noTx{}, Env: env}
	sink := &httpSink{log: env.Logger}
	transportSide := pairSide{"transport", func(n int) error {
		for range n {
			sink.n, sink.ack = 0, false
			res := p.Run(ctx, a, sink)
			if res.Err != nil || sink.n != 1024 || !sink.ack {
				return fmt.Errorf("result %+v, %d bytes, ack %v", res, sink.n, sink.ack)
			}
		}
		return nil
	}}

	rt := httpRuntime(b, st)
	if rt == nil {
		b.Skip("no " + proto.String() + " registration in the ss runtime")
	}
	t := openSSTxn(b, rt, st.Name)
	ssSide := pairSide{"ss", func(n int) error {
		for range n {
			if err := t.get(); err != nil {
				return err
			}
		}
		return nil
	}}
	// ss-recv: another stream read with Stream.Recv (its events taken on
	// this goroutine, no pump goroutine).
	rt2 := openSSTxn(b, rt, st.Name)
	rt2.pull = true
	recvSide := pairSide{"ss-recv", func(n int) error {
		for range n {
			if err := rt2.get(); err != nil {
				return err
			}
		}
		return nil
	}}
	b.ReportAllocs()
	runPair(b, rawSide, chanSide, transportSide, ssSide, recvSide)
	b.ReportMetric(t.kickCount()+rt2.kickCount(), "kicks")
}

// floorEvent is one event of the chan side; last marks DISCONNECTED.
type floorEvent struct {
	data []byte
	last bool
	err  error
}

// floorWorker does one raw GET per request on reqs, sending its seven
// events on evs; it closes evs when reqs is closed.
func floorWorker(c *http.Client, url string, reqs <-chan struct{}, evs chan<- floorEvent) {
	defer close(evs)
	buf := make([]byte, 32<<10)
	for range reqs {
		evs <- floorEvent{} // POLL
		evs <- floorEvent{} // CONNECTING
		resp, err := c.Get(url)
		if err != nil {
			evs <- floorEvent{err: err}
			continue
		}
		evs <- floorEvent{} // CONNECTED
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				evs <- floorEvent{data: append([]byte(nil), buf[:n]...)}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				evs <- floorEvent{err: err}
				break
			}
		}
		resp.Body.Close()
		evs <- floorEvent{}           // EOM
		evs <- floorEvent{}           // QOS_ACK_REMOTE
		evs <- floorEvent{last: true} // DISCONNECTED
	}
}

func BenchmarkPairH1Get1KiB(b *testing.B) { benchPairHTTP(b, policy.H1) }
func BenchmarkPairH2Get1KiB(b *testing.B) { benchPairHTTP(b, policy.H2) }
func BenchmarkPairH3Get1KiB(b *testing.B) { benchPairHTTP(b, policy.H3) }
