package testutil

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"
)

// WSFront is a WebSocket front for an MQTT broker, the way AWS IoT serves
// MQTT over WSS: it accepts handshakes on Path offering subprotocol
// "mqtt" (checking a SigV4-presigned query when Verifier is set), dials the
// broker's TCP address and carries MQTT bytes in binary messages both ways.
type WSFront struct {
	srv      *httptest.Server
	backend  string
	path     string
	verifier *PresignVerifier

	// Handshakes counts accepted handshakes, Refused refused ones.
	Handshakes, Refused atomic.Int32

	mu     sync.Mutex
	conns  map[io.Closer]struct{}
	urls   []string // request URIs of accepted handshakes (first maxFrontURLs)
	closed bool
	wg     sync.WaitGroup
}

// NewWSFront starts a front on 127.0.0.1 for the broker at backend; with
// cfg it serves TLS (wss). It is closed at test cleanup.
func NewWSFront(tb testing.TB, backend, path string, cfg *tls.Config, v *PresignVerifier) *WSFront {
	f := StartWSFront(backend, path, cfg, v)
	tb.Cleanup(f.Close)
	return f
}

// StartWSFront is NewWSFront for programs (examples): the caller closes it.
func StartWSFront(backend, path string, cfg *tls.Config, v *PresignVerifier) *WSFront {
	f := &WSFront{backend: backend, path: path, verifier: v, conns: map[io.Closer]struct{}{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	if cfg != nil {
		f.srv.TLS = cfg
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	return f
}

// Port is the front's TCP port.
func (f *WSFront) Port() int { return f.srv.Listener.Addr().(*net.TCPAddr).Port }

var upgrader = websocket.Upgrader{Subprotocols: []string{"mqtt"}, CheckOrigin: func(*http.Request) bool { return true }}

func (f *WSFront) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != f.path {
		f.Refused.Add(1)
		http.NotFound(w, r)
		return
	}
	if f.verifier != nil {
		if err := f.verifier.Verify(r); err != nil {
			f.Refused.Add(1)
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		f.Refused.Add(1)
		return
	}
	if ws.Subprotocol() != "mqtt" {
		f.Refused.Add(1)
		_ = ws.Close()
		return
	}
	b, err := net.Dial("tcp", f.backend)
	if err != nil {
		_ = ws.Close()
		return
	}
	if !f.track(ws, b) {
		return
	}
	f.record(r.URL.RequestURI())
	f.Handshakes.Add(1)
	f.wg.Add(2)
	go func() { // broker → client
		defer f.wg.Done()
		defer ws.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := b.Read(buf)
			if n > 0 {
				if werr := ws.WriteMessage(websocket.BinaryMessage, buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { // client → broker
		defer f.wg.Done()
		defer b.Close()
		for {
			typ, r, err := ws.NextReader()
			if err != nil {
				return
			}
			if typ != websocket.BinaryMessage {
				return
			}
			if _, err := io.Copy(b, r); err != nil {
				return
			}
		}
	}()
}

func (f *WSFront) track(cs ...io.Closer) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		for _, c := range cs {
			_ = c.Close()
		}
		return false
	}
	for _, c := range cs {
		f.conns[c] = struct{}{}
	}
	return true
}

// Close stops the front and every connection through it; idempotent.
func (f *WSFront) Close() {
	f.mu.Lock()
	f.closed = true
	cs := f.conns
	f.conns = map[io.Closer]struct{}{}
	f.mu.Unlock()
	f.srv.Close()
	for c := range cs {
		_ = c.Close()
	}
	f.wg.Wait()
}
