package httpserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const waitLimit = 5 * time.Second

// recSink records what a session reports, as strings:
// "CONNECTED", "meta name=value", "clear name", `rx(SOM,"data")`.
type recSink struct {
	mu      sync.Mutex
	ev      []string
	changed chan struct{}
	clearer bool // ClearMetadata is used only when set (see clearSink)
}

func newRecSink() *recSink { return &recSink{changed: make(chan struct{}, 1)} }

func (r *recSink) add(s string) {
	r.mu.Lock()
	r.ev = append(r.ev, s)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recSink) State(s event.State, ack uint32) { r.add(s.String()) }
func (r *recSink) SetMetadata(name, value string)  { r.add("meta " + name + "=" + value) }
func (r *recSink) Rx(ctx context.Context, data []byte, flags event.Flags) error {
	r.add(fmt.Sprintf("rx(%s,%q)", flags, data))
	return ctx.Err()
}
func (r *recSink) ValidityConfirmed()   {}
func (r *recSink) Logger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func (r *recSink) events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ev)
}

// waitFor waits until an event equal to want has been recorded n times.
func (r *recSink) waitFor(t *testing.T, want string, n int) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		c := 0
		for _, e := range r.events() {
			if e == want {
				c++
			}
		}
		if c >= n {
			return
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %q ×%d; events: %q", want, n, r.events())
		}
	}
}

// clearSink is a recSink that also implements MetadataClearer.
type clearSink struct{ *recSink }

func (c clearSink) ClearMetadata(name string) { c.add("clear " + name) }

// fakeTx is a scripted transport.ServerTx.
type fakeTx struct {
	ch chan transport.Chunk
	mu sync.Mutex
	r  transport.Response
	nt int
}

func newFakeTx(st *policy.Streamtype) *fakeTx {
	return &fakeTx{ch: make(chan transport.Chunk, 64), r: transport.Response{Metadata: make([]transport.MetadataValue, len(st.Metadata))}}
}

func (f *fakeTx) Next(ctx context.Context) (transport.Chunk, error) {
	select {
	case c := <-f.ch:
		return c, nil
	case <-ctx.Done():
		return transport.Chunk{}, ctx.Err()
	}
}
func (f *fakeTx) Pending() bool  { return len(f.ch) > 0 }
func (f *fakeTx) LenHint() int64 { return -1 }
func (f *fakeTx) Response() transport.Response {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.r
	r.Metadata = slices.Clone(f.r.Metadata)
	return r
}
func (f *fakeTx) NewTransaction() {
	f.mu.Lock()
	f.r.Status = 0
	f.nt++
	f.mu.Unlock()
}

func (f *fakeTx) respond(status int) {
	f.mu.Lock()
	f.r.Status = status
	f.mu.Unlock()
}

func (f *fakeTx) setMeta(st *policy.Streamtype, name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := st.MetadataIndex(name); i >= 0 {
		f.r.Metadata[i] = transport.MetadataValue{Value: value, Set: true}
		return
	}
	if f.r.Extra == nil {
		f.r.Extra = map[string]string{}
	}
	f.r.Extra[name] = value
}

// send queues a chunk; length is the RequestTxLen hint (-1 unknown).
func (f *fakeTx) send(data string, flags event.Flags, length int64) {
	f.ch <- transport.Chunk{Data: []byte(data), Flags: flags, Len: length}
}

// whole sends body as one SOM|EOM chunk with its length.
func (f *fakeTx) whole(body string) { f.send(body, event.SOM|event.EOM, int64(len(body))) }

// accepted is one accepted stream driven by the test.
type accepted struct {
	st     *policy.Streamtype
	conn   transport.ServerConn
	sink   *recSink
	tx     *fakeTx
	cancel context.CancelFunc
	result chan transport.Result
}

// wait returns Serve's result.
func (a *accepted) wait(t *testing.T) transport.Result {
	t.Helper()
	select {
	case r := <-a.result:
		a.result <- r
		return r
	case <-time.After(waitLimit):
		t.Fatalf("Serve did not return; events: %q", a.sink.events())
		return transport.Result{}
	}
}

type harness struct {
	t   *testing.T
	srv *Server
	lns []transport.Listener
	acc chan *accepted
	// clear makes the sinks implement MetadataClearer.
	clear bool
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, srv: New(nil).(*Server), acc: make(chan *accepted, 64)}
	t.Cleanup(h.close)
	return h
}

// listen opens st on the harness's Server; each accepted connection gets a
// recording sink and a scripted tx, and Serve runs at once.
func (h *harness) listen(st *policy.Streamtype) transport.Listener {
	h.t.Helper()
	ln, err := h.srv.Listen(context.Background(), st, nil, func(c transport.ServerConn) {
		a := &accepted{st: st, conn: c, sink: newRecSink(), tx: newFakeTx(st), result: make(chan transport.Result, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		a.cancel = cancel
		att := &transport.Attempt{Type: st, Tx: a.tx, Metadata: make([]transport.MetadataValue, len(st.Metadata)), Env: transport.Env{}.Defaults()}
		var sink transport.Sink = a.sink
		if h.clear {
			sink = clearSink{a.sink}
		}
		go func() { a.result <- c.Serve(ctx, att, sink) }()
		h.acc <- a
	})
	if err != nil {
		h.t.Fatalf("Listen(%s): %v", st.Name, err)
	}
	h.lns = append(h.lns, ln)
	return ln
}

// next returns the next accepted stream.
func (h *harness) next() *accepted {
	h.t.Helper()
	select {
	case a := <-h.acc:
		return a
	case <-time.After(waitLimit):
		h.t.Fatal("no connection accepted")
		return nil
	}
}

// none asserts that no further stream was accepted.
func (h *harness) none() {
	h.t.Helper()
	select {
	case a := <-h.acc:
		h.t.Fatalf("unexpected accepted stream from %v", a.conn.RemoteAddr())
	default:
	}
}

func (h *harness) close() {
	for _, ln := range h.lns {
		_ = ln.Close()
	}
	for {
		select {
		case a := <-h.acc:
			a.cancel()
			a.wait(h.t)
		default:
			return
		}
	}
}

// url returns the base URL of a TCP listener.
func baseURL(ln transport.Listener, tls bool) string {
	if tls {
		return "https://" + ln.Addr().String()
	}
	return "http://" + ln.Addr().String()
}

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

// client is an HTTP/1.1 client; keepAlive false closes after each request.
func client(t *testing.T, keepAlive bool) *http.Client {
	tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitLimit}
}

// testPKI is a generated CA and a server certificate for 127.0.0.1 and
// localhost, as policy certs.
type testPKI struct {
	pool *x509.CertPool
	cert *policy.Cert
	key  *policy.Cert
}

var (
	pkiOnce sync.Once
	pki     testPKI
)

func getPKI(t *testing.T) testPKI {
	pkiOnce.Do(func() {
		caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		caTmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "ss test CA"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign,
		}
		caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
		if err != nil {
			panic(err)
		}
		ca, _ := x509.ParseCertificate(caDER)
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(2),
			Subject:      pkix.Name{CommonName: "localhost"},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			panic(err)
		}
		leaf, _ := x509.ParseCertificate(der)
		pki.pool = x509.NewCertPool()
		pki.pool.AddCert(ca)
		pki.cert = &policy.Cert{Name: "srvcert", DER: der, Kind: policy.KindCertificate, Certificate: leaf}
		keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
		pki.key = &policy.Cert{Name: "srvkey", DER: keyDER, Kind: policy.KindPrivateKey, PrivateKey: key}
	})
	return pki
}

// withTLS turns st into a TLS server with the test certificate.
func withTLS(t *testing.T, st *policy.Streamtype) *policy.Streamtype {
	p := getPKI(t)
	st.TLS = true
	st.ServerCert, st.ServerCertName = p.cert, p.cert.Name
	st.ServerKey, st.ServerKeyName = p.key, p.key.Name
	return st
}

// tlsClient trusts the test CA; h2 selects HTTP/2 only, else HTTP/1.1 only.
func tlsClient(t *testing.T, h2 bool) *http.Client {
	var p http.Protocols
	if h2 {
		p.SetHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: getPKI(t).pool}, Protocols: &p, ForceAttemptHTTP2: h2, DisableKeepAlives: !h2}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitLimit}
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}
