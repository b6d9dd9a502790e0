package testutil

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// RawCapture is a loopback TCP (or TLS) server that records every byte each
// connection sends until the end of the first request head ("\r\n\r\n")
// and for a short grace period after it (so bytes smuggled after a request
// are caught too), then answers with Reply and closes. It never parses the
// request: what it records is exactly what reached the wire.
type RawCapture struct {
	srv *Server
	// Reply is written after the request head; "HTTP/1.1 200 OK" with an
	// empty body by default.
	reply string

	mu    sync.Mutex
	conns []string
	ch    chan struct{}
}

// RawCaptureReply is RawCapture's default answer.
const RawCaptureReply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

// NewRawCapture starts a RawCapture on 127.0.0.1, with TLS when cfg is
// non-nil, answering every request with reply ("" for RawCaptureReply).
func NewRawCapture(tb testing.TB, cfg *tls.Config, reply string) *RawCapture {
	tb.Helper()
	if reply == "" {
		reply = RawCaptureReply
	}
	c := &RawCapture{reply: reply, ch: make(chan struct{}, 1)}
	c.srv = Listen(tb, "tcp", "", cfg, c.handle)
	return c
}

func (c *RawCapture) handle(conn net.Conn) {
	var buf bytes.Buffer
	b := make([]byte, 4096)
	deadline := time.Now().Add(10 * time.Second)
	head := false
	for {
		conn.SetReadDeadline(deadline)
		n, err := conn.Read(b)
		buf.Write(b[:n])
		if !head && bytes.Contains(buf.Bytes(), []byte("\r\n\r\n")) {
			head = true
			// Grace period: anything the client wrote with the request
			// (a smuggled second request) arrives within it.
			deadline = time.Now().Add(150 * time.Millisecond)
		}
		if err != nil || buf.Len() > 1<<20 {
			break
		}
	}
	c.mu.Lock()
	c.conns = append(c.conns, buf.String())
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
	if head {
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		conn.Write([]byte(c.reply))
	}
}

// Port returns the listening port.
func (c *RawCapture) Port() int { return c.srv.Port() }

// Conns returns the bytes received on each finished connection, in order.
func (c *RawCapture) Conns() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.conns...)
}

// Wait returns the connections once at least n have finished, or what there
// is when d passes.
func (c *RawCapture) Wait(n int, d time.Duration) []string {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		if got := c.Conns(); len(got) >= n {
			return got
		}
		select {
		case <-c.ch:
		case <-t.C:
			return c.Conns()
		}
	}
}

// CapturedRequest is a request as a real HTTP server (h2, h3, ws) decoded it.
type CapturedRequest struct {
	Method     string
	RequestURI string // as received: path and query, not decoded
	Host       string
	Header     http.Header
}

// HeaderLines returns the request's headers as sorted "name: value" lines,
// one per value (for asserting that no extra header arrived).
func (r CapturedRequest) HeaderLines() []string {
	var out []string
	for k, vs := range r.Header {
		for _, v := range vs {
			out = append(out, strings.ToLower(k)+": "+v)
		}
	}
	sort.Strings(out)
	return out
}

// RequestLog records the requests an http.Handler sees and answers each
// with 200 and body "ok".
type RequestLog struct {
	mu   sync.Mutex
	reqs []CapturedRequest
	ch   chan struct{}
}

// NewRequestLog returns an empty RequestLog.
func NewRequestLog() *RequestLog { return &RequestLog{ch: make(chan struct{}, 1)} }

// ServeHTTP records r and answers 200 "ok".
func (l *RequestLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.Record(r)
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("ok"))
}

// Record records r.
func (l *RequestLog) Record(r *http.Request) {
	l.mu.Lock()
	l.reqs = append(l.reqs, CapturedRequest{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone()})
	l.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	default:
	}
}

// Requests returns the recorded requests in order.
func (l *RequestLog) Requests() []CapturedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]CapturedRequest(nil), l.reqs...)
}

// Wait returns the requests once at least n were recorded, or what there is
// when d passes.
func (l *RequestLog) Wait(n int, d time.Duration) []CapturedRequest {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		if got := l.Requests(); len(got) >= n {
			return got
		}
		select {
		case <-l.ch:
		case <-t.C:
			return l.Requests()
		}
	}
}

// MQTTCapture is a mochi-mqtt hook that records, as the broker read them
// from the network, the client id and will topic of every CONNECT, the
// topic of every PUBLISH and the filters of every SUBSCRIBE (before the
// broker validates them). Add it with Server.AddHook.
type MQTTCapture struct {
	mochi.HookBase
	mu         sync.Mutex
	ClientIDs  []string
	WillTopics []string
	Publishes  []string
	Filters    []string
	ch         chan struct{}
}

// NewMQTTCapture returns an empty MQTTCapture.
func NewMQTTCapture() *MQTTCapture { return &MQTTCapture{ch: make(chan struct{}, 1)} }

// ID names the hook.
func (h *MQTTCapture) ID() string { return "testutil-mqtt-capture" }

// Provides reports the one event the hook handles.
func (h *MQTTCapture) Provides(b byte) bool { return b == mochi.OnPacketRead }

// OnPacketRead records pk and passes it on unchanged.
func (h *MQTTCapture) OnPacketRead(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	h.mu.Lock()
	switch pk.FixedHeader.Type {
	case packets.Connect:
		h.ClientIDs = append(h.ClientIDs, pk.Connect.ClientIdentifier)
		if pk.Connect.WillFlag {
			h.WillTopics = append(h.WillTopics, pk.Connect.WillTopic)
		}
	case packets.Publish:
		h.Publishes = append(h.Publishes, pk.TopicName)
	case packets.Subscribe:
		for _, f := range pk.Filters {
			h.Filters = append(h.Filters, f.Filter)
		}
	}
	h.mu.Unlock()
	select {
	case h.ch <- struct{}{}:
	default:
	}
	return pk, nil
}

// Snapshot returns copies of what was recorded: client ids, will topics,
// publish topics and subscribe filters.
func (h *MQTTCapture) Snapshot() (clientIDs, willTopics, publishes, filters []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.ClientIDs...), append([]string(nil), h.WillTopics...),
		append([]string(nil), h.Publishes...), append([]string(nil), h.Filters...)
}

// WaitPublishes returns the publish topics once at least n were recorded,
// or an error with what there is when ctx is done.
func (h *MQTTCapture) WaitPublishes(ctx context.Context, n int) ([]string, error) {
	for {
		_, _, pubs, _ := h.Snapshot()
		if len(pubs) >= n {
			return pubs, nil
		}
		select {
		case <-h.ch:
		case <-ctx.Done():
			return pubs, errors.New("testutil: timed out waiting for publishes")
		}
	}
}
