package ws

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// recSink records what a transport reports, in order.
type recSink struct {
	mu     sync.Mutex
	events []string
	data   [][]byte // rx payloads, in order
	flags  []event.Flags
	change chan struct{}
	rxErr  error
	log    *slog.Logger
}

func newSink() *recSink {
	s := &recSink{change: make(chan struct{}, 1), log: slog.New(slog.DiscardHandler)}
	if os.Getenv("WSDEBUG") != "" {
		s.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return s
}

func (s *recSink) add(e string) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
	select {
	case s.change <- struct{}{}:
	default:
	}
}

func (s *recSink) State(st event.State, ack uint32) { s.add(st.String()) }
func (s *recSink) SetMetadata(name, value string)   { s.add("meta " + name + "=" + value) }
func (s *recSink) ValidityConfirmed()               { s.add("valid") }
func (s *recSink) Logger() *slog.Logger             { return s.log }

func (s *recSink) Rx(ctx context.Context, data []byte, flags event.Flags) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	err := s.rxErr
	s.data = append(s.data, data)
	s.flags = append(s.flags, flags)
	s.mu.Unlock()
	if flags&event.PerfJSON != 0 {
		s.add("perf")
	} else if len(data) <= 32 {
		s.add(fmt.Sprintf("rx %s %s", flags, data))
	} else {
		s.add(fmt.Sprintf("rx %s %d", flags, len(data)))
	}
	return err
}

// Events returns a copy of the recorded events, "valid" lines removed
// unless keepValid.
func (s *recSink) Events(keepValid bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.events {
		if e == "valid" && !keepValid {
			continue
		}
		out = append(out, e)
	}
	return out
}

func (s *recSink) count(e string) int {
	n := 0
	for _, x := range s.Events(true) {
		if x == e {
			n++
		}
	}
	return n
}

// waitFor waits until pred holds for the events (valid lines included).
func (s *recSink) waitFor(t *testing.T, what string, pred func([]string) bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if pred(s.Events(true)) {
			return
		}
		select {
		case <-s.change:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timeout waiting for %s; events %q", what, s.Events(true))
		}
	}
}

func (s *recSink) waitEvents(t *testing.T, n int) []string {
	t.Helper()
	s.waitFor(t, fmt.Sprintf("%d events", n), func([]string) bool { return len(s.Events(false)) >= n })
	return s.Events(false)
}

// chanTx is a TxSource fed by the test.
type chanTx struct{ ch chan transport.Chunk }

func newTx(chunks ...transport.Chunk) *chanTx {
	tx := &chanTx{ch: make(chan transport.Chunk, 64)}
	for _, c := range chunks {
		tx.ch <- c
	}
	return tx
}

func (t *chanTx) Next(ctx context.Context) (transport.Chunk, error) {
	select {
	case c := <-t.ch:
		return c, nil
	case <-ctx.Done():
		return transport.Chunk{}, ctx.Err()
	}
}
func (t *chanTx) Pending() bool  { return len(t.ch) > 0 }
func (t *chanTx) LenHint() int64 { return -1 }
func (t *chanTx) send(data string, f event.Flags) {
	t.ch <- transport.Chunk{Data: []byte(data), Flags: f, Len: -1}
}

func msg(s string) transport.Chunk {
	return transport.Chunk{Data: []byte(s), Flags: event.SOM | event.EOM, Len: -1}
}

// wsType is a ws client streamtype for endpoint (e.g. "127.0.0.1:1234").
func wsType(endpoint string) *policy.Streamtype {
	return &policy.Streamtype{Name: "wstest", Protocol: policy.WS, Endpoint: endpoint, ClientCert: -1}
}

func attempt(st *policy.Streamtype, tx transport.TxSource) *transport.Attempt {
	env := transport.Env{}.Defaults()
	env.ConnectTimeout = 5 * time.Second
	return &transport.Attempt{
		Policy:   &policy.Policy{Streamtypes: []*policy.Streamtype{st}},
		Type:     st,
		Metadata: make([]transport.MetadataValue, len(st.Metadata)),
		Tx:       tx,
		Env:      env,
		StreamID: 1,
	}
}

// runAsync runs the protocol in a goroutine; the returned func cancels ctx
// (when cancel) and waits for the Result.
func runAsync(t *testing.T, a *transport.Attempt, sink *recSink) (wait func(cancel bool) transport.Result) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan transport.Result, 1)
	go func() { done <- New(a.Env).Run(ctx, a, sink) }()
	t.Cleanup(cancel)
	return func(c bool) transport.Result {
		t.Helper()
		if c {
			cancel()
		}
		select {
		case r := <-done:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
			return transport.Result{}
		}
	}
}

// wsServer is a loopback WebSocket server running handle for every upgraded
// connection. Requests are recorded.
type wsServer struct {
	*httptest.Server
	mu       sync.Mutex
	reqs     []*http.Request
	upgrader websocket.Upgrader
	respHdr  http.Header
	handle   func(c *websocket.Conn)
	wg       sync.WaitGroup
	closed   bool
	conns    []*websocket.Conn
}

func newWSServer(t *testing.T, handle func(c *websocket.Conn)) *wsServer {
	s := &wsServer{handle: handle}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Start()
	t.Cleanup(s.shutdown)
	return s
}

func (s *wsServer) shutdown() {
	s.mu.Lock()
	s.closed = true
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.Server.CloseClientConnections()
	s.Server.Close()
	s.wg.Wait()
}

func (s *wsServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	h := s.respHdr
	s.mu.Unlock()
	c, err := s.upgrader.Upgrade(w, r, h)
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.wg.Add(1)
	s.conns = append(s.conns, c)
	s.mu.Unlock()
	defer s.wg.Done()
	defer c.Close()
	s.handle(c)
}

func (s *wsServer) lastReq() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		return nil
	}
	return s.reqs[len(s.reqs)-1]
}

func (s *wsServer) hostPort() string { return strings.TrimPrefix(s.URL, "http://") }

// echo answers every message with the same type and payload.
func echo(c *websocket.Conn) {
	for {
		mt, p, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, p); err != nil {
			return
		}
	}
}

// frame is one raw frame read from the wire.
type frame struct {
	op      byte
	fin     bool
	masked  bool
	payload []byte
}

// readFrame reads one frame from r, unmasking it.
func readFrame(r io.Reader) (frame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return frame{}, err
	}
	f := frame{op: h[0] & 0x0f, fin: h[0]&0x80 != 0, masked: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	var key [4]byte
	if f.masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return f, err
		}
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return f, err
	}
	if f.masked {
		for i := range f.payload {
			f.payload[i] ^= key[i&3]
		}
	}
	return f, nil
}

// testCA is a generated CA with a leaf for 127.0.0.1 and localhost.
type testCA struct {
	cert *x509.Certificate
	leaf tls.Certificate
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ss test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: caCert, leaf: tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}}
}

func (ca *testCA) trustStore() *policy.TrustStore {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	c := &policy.Cert{Name: "ca", DER: ca.cert.Raw, Kind: policy.KindCertificate, Certificate: ca.cert}
	return &policy.TrustStore{Name: "ts", Stack: []*policy.Cert{c}, Pool: pool}
}

// newWSTLSServer is newWSServer over TLS with a leaf from ca.
func newWSTLSServer(t *testing.T, ca *testCA, handle func(c *websocket.Conn)) *wsServer {
	s := &wsServer{handle: handle}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Server.TLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf}}
	s.Server.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.shutdown)
	return s
}

// httptestServer is a plain loopback HTTP server closed at cleanup.
func httptestServer(t *testing.T, h http.Handler) *httptest.Server {
	s := httptest.NewServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(s.Close)
	return s
}

// socks5 is a minimal SOCKS5 server (no authentication, CONNECT only) on
// loopback; it records the requested destinations.
type socks5 struct {
	ln    net.Listener
	mu    sync.Mutex
	dests []string
	wg    sync.WaitGroup
}

func newSOCKS5(t *testing.T) *socks5 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &socks5{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *socks5) serve(c net.Conn) {
	defer c.Close()
	var b [262]byte
	// greeting: VER NMETHODS METHODS
	if _, err := io.ReadFull(c, b[:2]); err != nil || b[0] != 5 {
		return
	}
	if _, err := io.ReadFull(c, b[:b[1]]); err != nil {
		return
	}
	c.Write([]byte{5, 0})
	// request: VER CMD RSV ATYP DST.ADDR DST.PORT
	if _, err := io.ReadFull(c, b[:4]); err != nil || b[1] != 1 {
		return
	}
	var host string
	switch b[3] {
	case 1:
		io.ReadFull(c, b[:4])
		host = net.IP(b[:4]).String()
	case 3:
		io.ReadFull(c, b[:1])
		n := int(b[0])
		io.ReadFull(c, b[:n])
		host = string(b[:n])
	default:
		return
	}
	io.ReadFull(c, b[:2])
	dest := net.JoinHostPort(host, fmt.Sprint(binary.BigEndian.Uint16(b[:2])))
	s.mu.Lock()
	s.dests = append(s.dests, dest)
	s.mu.Unlock()
	up, err := net.Dial("tcp", dest)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	defer up.Close()
	c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	done := make(chan struct{})
	go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); close(done) }()
	io.Copy(c, up)
	c.Close()
	<-done
}
