package httpc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.GoleakOptions()...)
}

// testCA is a CA generated for the tests with a leaf for 127.0.0.1/localhost.
type testCA struct {
	pool *x509.CertPool
	leaf tls.Certificate
}

var (
	caOnce       sync.Once
	theCA, other *testCA
)

func cas(t testing.TB) (*testCA, *testCA) {
	caOnce.Do(func() {
		theCA = newCA()
		other = newCA()
	})
	return theCA, other
}

func newCA() *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ss test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	caCert, _ := x509.ParseCertificate(der)
	lkey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ltmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	lder, err := x509.CreateCertificate(rand.Reader, ltmpl, caCert, &lkey.PublicKey, key)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &testCA{pool: pool, leaf: tls.Certificate{Certificate: [][]byte{lder}, PrivateKey: lkey}}
}

// server is a loopback test server for one protocol.
type server struct {
	URL     string
	host    string
	port    int
	tls     bool
	accepts atomic.Int32
	close   func()
}

// startServer starts an h1 (plain or TLS), h2 (TLS) or h3 server.
func startServer(t testing.TB, proto policy.Protocol, useTLS bool, h http.Handler) *server {
	t.Helper()
	ca, _ := cas(t)
	s := &server{tls: useTLS}
	switch proto {
	case policy.H3:
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http3.Server{
			Handler:   h,
			TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{ca.leaf}}),
			Logger:    slog.New(slog.DiscardHandler),
		}
		done := make(chan struct{})
		go func() { defer close(done); hs.Serve(pc) }()
		s.port = pc.LocalAddr().(*net.UDPAddr).Port
		s.tls = true
		s.close = func() { hs.Close(); pc.Close(); <-done }
	default:
		hts := httptest.NewUnstartedServer(h)
		hts.Config.ErrorLog = log.New(io.Discard, "", 0)
		hts.Config.ConnState = func(c net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.accepts.Add(1)
			}
		}
		if useTLS {
			hts.TLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf}}
			hts.EnableHTTP2 = proto == policy.H2
			hts.StartTLS()
		} else {
			hts.Start()
		}
		s.port = hts.Listener.Addr().(*net.TCPAddr).Port
		s.close = hts.Close
	}
	s.host = "127.0.0.1"
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	s.URL = scheme + "://127.0.0.1:" + strconv.Itoa(s.port)
	t.Cleanup(s.close)
	return s
}

// streamtype returns a client streamtype aimed at s.
func (s *server) streamtype(proto policy.Protocol, url string) *policy.Streamtype {
	ca, _ := cas(nil)
	st := &policy.Streamtype{
		Name:       "test",
		Protocol:   proto,
		Endpoint:   s.host,
		Port:       uint16(s.port),
		TLS:        s.tls,
		ClientCert: -1,
		HTTPMethod: "GET",
		HTTPURL:    url,
	}
	if s.tls {
		st.TrustStoreName = "ca"
		st.TrustStore = &policy.TrustStore{Name: "ca", Pool: ca.pool}
	}
	return st
}

// declare adds metadata items (name → header mapping, "" for none).
func declare(st *policy.Streamtype, pairs ...string) {
	for i := 0; i+1 < len(pairs); i += 2 {
		hdr := strings.TrimSuffix(pairs[i+1], ":")
		st.Metadata = append(st.Metadata, &policy.MetadataItem{Name: pairs[i], Header: hdr, HeaderRaw: pairs[i+1], Index: len(st.Metadata)})
	}
}

// recorder is a Sink recording every call.
type recorder struct {
	mu     sync.Mutex
	events []string
	rx     [][]byte
	meta   map[string]string
	rxErr  error
	rides  []string
	// rxHook runs before each Rx is recorded (for blocking tests).
	rxHook func()
}

func newRecorder() *recorder { return &recorder{meta: map[string]string{}} }

func (r *recorder) State(s event.State, ack uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, s.String())
}

func (r *recorder) SetMetadata(name, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.meta[name] = value
	r.events = append(r.events, "meta("+name+"="+value+")")
}

func (r *recorder) Rx(ctx context.Context, data []byte, flags event.Flags) error {
	if r.rxHook != nil {
		r.rxHook()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if flags&event.PerfJSON != 0 {
		r.events = append(r.events, "perf("+flags.String()+")")
		r.rx = append(r.rx, data)
		return r.rxErr
	}
	d := string(data)
	if len(d) > 24 {
		d = fmt.Sprintf("%d bytes", len(d))
	}
	r.events = append(r.events, "rx("+flags.String()+","+d+")")
	r.rx = append(r.rx, data)
	return r.rxErr
}

func (r *recorder) ValidityConfirmed() {}

func (r *recorder) SetRideshare(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rides = append(r.rides, name)
}

func (r *recorder) Logger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// seq returns the recorded events without metadata entries.
func (r *recorder) seq() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if !strings.HasPrefix(e, "meta(") {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// script is a TxSource yielding fixed chunks.
type script struct {
	mu      sync.Mutex
	chunks  []transport.Chunk
	hint    int64
	pending bool
	delay   time.Duration
}

func (s *script) Next(ctx context.Context) (transport.Chunk, error) {
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return transport.Chunk{}, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.chunks) == 0 {
		s.mu.Unlock()
		<-ctx.Done()
		s.mu.Lock()
		return transport.Chunk{}, ctx.Err()
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return c, nil
}

func (s *script) Pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending || len(s.chunks) > 0
}

func (s *script) LenHint() int64 { return s.hint }

// whole returns a script sending data as one message (SOM|EOM).
func whole(data string) *script {
	return &script{hint: -1, chunks: []transport.Chunk{{Data: []byte(data), Flags: event.SOM | event.EOM, Len: -1}}}
}

// pieces returns a script sending the parts as one message of unknown length.
func pieces(parts ...string) *script {
	s := &script{hint: -1}
	for i, p := range parts {
		var f event.Flags
		if i == 0 {
			f |= event.SOM
		}
		if i == len(parts)-1 {
			f |= event.EOM
		}
		s.chunks = append(s.chunks, transport.Chunk{Data: []byte(p), Flags: f, Len: -1})
	}
	return s
}

// attempt builds an Attempt; vals are name, value pairs of declared metadata.
func attempt(st *policy.Streamtype, env *transport.Env, tx transport.TxSource, vals ...string) *transport.Attempt {
	a := &transport.Attempt{
		Policy:   &policy.Policy{Streamtypes: []*policy.Streamtype{st}},
		Type:     st,
		Metadata: make([]transport.MetadataValue, len(st.Metadata)),
		Env:      env,
		Tx:       tx,
		StreamID: 1,
	}
	if a.Tx == nil {
		a.Tx = &script{hint: -1}
	}
	for i := 0; i+1 < len(vals); i += 2 {
		if j := st.MetadataIndex(vals[i]); j >= 0 {
			a.Metadata[j] = transport.MetadataValue{Value: vals[i+1], Set: true}
		} else {
			if a.Extra == nil {
				a.Extra = map[string]string{}
			}
			a.Extra[vals[i]] = vals[i+1]
		}
	}
	return a
}

func testEnv() *transport.Env {
	return transport.Env{
		HeaderTimeout:     5 * time.Second,
		BodyIdleTimeout:   5 * time.Second,
		ConnectTimeout:    5 * time.Second,
		SharedIdleTimeout: 2 * time.Second,
	}.Defaults()
}

// runOnce runs one attempt with a fresh Client and closes it.
func runOnce(t testing.TB, st *policy.Streamtype, a *transport.Attempt) (transport.Result, *recorder) {
	t.Helper()
	c := New(st.Protocol, a.Env)
	defer c.Close(context.Background())
	rec := newRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := c.Run(ctx, a, rec)
	return res, rec
}

func eq(t testing.TB, got, want []string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("sequence\n got: %q\nwant: %q", got, want)
	}
}

// readAll reads a request body in a handler.
func readAll(r *http.Request) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

var allProtos = []policy.Protocol{policy.H1, policy.H2, policy.H3}

// forEachProto runs f as a subtest per protocol with a TLS server of it.
func forEachProto(t *testing.T, h http.Handler, f func(t *testing.T, s *server, proto policy.Protocol)) {
	for _, p := range allProtos {
		t.Run(p.String(), func(t *testing.T) {
			s := startServer(t, p, true, h)
			f(t, s, p)
		})
	}
}
