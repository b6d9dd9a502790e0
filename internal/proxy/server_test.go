package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
)

// fakeOnward creates fakeStreams for the streamtypes it knows.
type fakeOnward struct {
	mu      sync.Mutex
	types   map[string]OnwardInfo
	streams []*fakeStream
	created chan *fakeStream
}

func newFakeOnward(types map[string]OnwardInfo) *fakeOnward {
	return &fakeOnward{types: types, created: make(chan *fakeStream, 16)}
}

func (f *fakeOnward) Create(ctx context.Context, req CreateRequest) (OnwardStream, OnwardInfo, error) {
	info, ok := f.types[req.Streamtype]
	if !ok {
		return nil, info, errors.New("unknown streamtype")
	}
	s := &fakeStream{ev: make(chan event.Event, 64), md: map[string]string{}, ops: make(chan string, 64)}
	s.ev <- event.Event{Kind: event.StateEvent, State: event.Creating}
	f.mu.Lock()
	f.streams = append(f.streams, s)
	f.mu.Unlock()
	f.created <- s
	return s, info, nil
}

// fakeStream records the operations applied to it; the test emits events.
type fakeStream struct {
	ev   chan event.Event
	ops  chan string
	mu   sync.Mutex
	md   map[string]string
	once sync.Once
}

func (s *fakeStream) op(v string)                     { s.ops <- v }
func (s *fakeStream) Events() <-chan event.Event      { return s.ev }
func (s *fakeStream) SetTxLen(n int64) error          { s.op("len"); return nil }
func (s *fakeStream) RequestTx(context.Context) error { s.op("reqtx"); return nil }
func (s *fakeStream) Connect(context.Context) error   { s.op("connect"); return nil }
func (s *fakeStream) CancelTimeout() error            { s.op("cancel"); return nil }
func (s *fakeStream) Rideshare() string               { return "" }
func (s *fakeStream) StartTimeout(d time.Duration) error {
	s.op("timeout " + d.String())
	return nil
}
func (s *fakeStream) Write(ctx context.Context, p []byte, flags event.Flags) error {
	s.op("tx " + string(p))
	return nil
}
func (s *fakeStream) SetMetadata(name, value string) error {
	if name != "ctype" {
		return errors.New("undeclared")
	}
	s.mu.Lock()
	s.md[name] = value
	s.mu.Unlock()
	s.op("md " + name + "=" + value)
	return nil
}
func (s *fakeStream) Metadata(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.md[name]
	return v, ok
}
func (s *fakeStream) Destroy(context.Context) error {
	s.once.Do(func() {
		s.op("destroy")
		s.ev <- event.Event{Kind: event.StateEvent, State: event.Destroying}
		close(s.ev)
	})
	return nil
}
func (s *fakeStream) emit(st event.State) { s.ev <- event.Event{Kind: event.StateEvent, State: st} }

// startServer serves f on a fresh abstract socket.
func startServer(t *testing.T, f Onward, tweak func(*Server)) (*Server, string) {
	t.Helper()
	name := "@ss-proxy-unit-" + t.Name() + "-" + time.Now().Format("150405.000000000")
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Onward: f, Loop: testLoopMode(), BusyPoll: testBusyPoll()}
	if tweak != nil {
		tweak(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, name
}

// rawClient is a hand-written SSSv1 client.
type rawClient struct {
	t   *testing.T
	c   net.Conn
	dec *Decoder
}

func dialRaw(t *testing.T, name string) *rawClient {
	t.Helper()
	c, err := net.Dial("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c, dec: NewDecoder(c, ProxyToClient, Limits{})}
}

func (r *rawClient) send(msgs ...Message) {
	r.t.Helper()
	b, err := Append(nil, msgs...)
	if err != nil {
		r.t.Fatal(err)
	}
	r.write(b)
}

func (r *rawClient) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawClient) next() Message {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	m, err := r.dec.Next()
	if err != nil {
		r.t.Fatalf("reading: %v", err)
	}
	return m
}

// closed asserts the proxy closes the link (EOF) within d.
func (r *rawClient) closed(d time.Duration) {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(d))
	for {
		_, err := r.dec.Next()
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.t.Fatalf("link still open after %v", d)
			}
		}
		return
	}
}

func (r *rawClient) expectState(want ...event.State) {
	r.t.Helper()
	for _, st := range want {
		m := r.next()
		cs, ok := m.(*ConnState)
		if !ok || cs.State != st {
			r.t.Fatalf("got %#v, want CONNSTATE %s", m, st)
		}
	}
}

func (r *rawClient) create(name string) {
	r.t.Helper()
	r.send(&StreamType{PID: 0x1234, Credit: DefaultCredit, Name: name})
	m := r.next()
	cr, ok := m.(*CreateResult)
	if !ok || !cr.OK() {
		r.t.Fatalf("got %#v, want CREATE_RESULT ok", m)
	}
	r.expectState(event.Creating)
}

func waitOp(t *testing.T, s *fakeStream, want string) {
	t.Helper()
	select {
	case got := <-s.ops:
		if got != want {
			t.Fatalf("onward op %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no onward op, want %q", want)
	}
}

var mintest = map[string]OnwardInfo{"mintest": {Rideshares: []string{"mintest"}, Metadata: []string{"ctype"}, ProxyBuflen: 100}}

func TestServerCreateResultBytes(t *testing.T) {
	f := newFakeOnward(map[string]OnwardInfo{
		"mintest": {Rideshares: []string{"mintest"}},
		"bufd":    {Rideshares: []string{"bufd", "mintest"}, ClientBuflen: 4096},
	})
	_, name := startServer(t, f, nil)
	for _, tc := range []struct{ st, want string }{
		{"mintest", "56000d00000000002c6d696e7465737457000501000000 00"},
		{"bufd", "560012000000100 02c627566642c6d696e7465737457000501000000 00"},
	} {
		c := dialRaw(t, name)
		c.send(&StreamType{PID: 0x1234, Credit: DefaultCredit, Name: tc.st})
		want := hexBytes(t, tc.want)
		got := make([]byte, len(want))
		c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c.c, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: got % x, want % x", tc.st, got, want)
		}
	}
	// Unknown streamtype: the failure frame, then the link is closed.
	c := dialRaw(t, name)
	c.send(&StreamType{Name: "nosuch"})
	got, _ := io.ReadAll(c.c)
	if want := hexBytes(t, "5600050100000000"); !bytes.Equal(got, want) {
		t.Fatalf("failed result: got % x, want % x", got, want)
	}
}

func TestServerOperations(t *testing.T) {
	f := newFakeOnward(mintest)
	_, name := startServer(t, f, nil)
	c := dialRaw(t, name)
	c.create("mintest")
	s := <-f.created
	c.send(&TxMetadata{Name: "ctype", Value: []byte("text/plain")}, &TimeoutUpdate{Millis: 5000},
		&TimeoutUpdate{Millis: TimeoutCancel}, &PayloadLengthHint{Length: 5}, &OnwardConnect{},
		&TxPayload{Flags: event.SOM | event.EOM, Payload: []byte("hello")}, &Perf{JSON: []byte("{}")}, &TxCredit{Delta: 5})
	for _, op := range []string{"md ctype=text/plain", "timeout 5s", "cancel", "len", "connect", "tx hello"} {
		waitOp(t, s, op)
	}
	c.c.Close()
	waitOp(t, s, "destroy")
}

// TestServerMalformedClosesOnlyThatLink: every §8 violation closes its own
// link (and destroys its onward stream) while another link keeps working.
func TestServerMalformedClosesOnlyThatLink(t *testing.T) {
	f := newFakeOnward(mintest)
	_, name := startServer(t, f, nil)
	good := dialRaw(t, name)
	good.create("mintest")
	gs := <-f.created
	for _, tc := range []struct {
		name string
		b    string
	}{
		{"unknown code", "ee0000"},
		{"proxy code", "57000501000000 00"},
		{"reserved", "b30000"},
		{"second streamtype", "aa001001000012341dcd65006d696e74657374"},
		{"onward connect L=1", "ab000100"},
		{"timeout L=3", "b0000300 0000"},
		{"metadata k=0", "ae00020078"},
		{"undeclared metadata", "ae0004026e6f78"},
		{"tx too short", "ad000f" + "000000000000000000000000000000"},
		{"tx larger than proxy_buflen", "ad0079" + "00000003000000000000000000000000" + string(bytes.Repeat([]byte("41"), 105))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, name)
			c.create("mintest")
			s := <-f.created
			c.write(hexBytes(t, tc.b))
			c.closed(5 * time.Second)
			for op := range s.ops {
				if op == "destroy" {
					break
				}
			}
		})
	}
	// The good link still works.
	good.send(&OnwardConnect{})
	waitOp(t, gs, "connect")
	gs.emit(event.Connecting)
	good.expectState(event.Connecting)
}

func TestServerFirstFrameAndDeadline(t *testing.T) {
	f := newFakeOnward(mintest)
	_, name := startServer(t, f, func(s *Server) { s.StreamTypeTimeout = 100 * time.Millisecond })
	// A first frame that is not STREAMTYPE.
	c := dialRaw(t, name)
	c.send(&OnwardConnect{})
	c.closed(2 * time.Second)
	// Version 0 (an SSSv0 client).
	c = dialRaw(t, name)
	c.write(hexBytes(t, "aa000c1dcd6500000012346d696e74"))
	c.closed(2 * time.Second)
	// Nothing at all: closed after the deadline.
	// start before the dial: the server's deadline may start before
	// dialRaw returns to a slow test goroutine.
	start := time.Now()
	c = dialRaw(t, name)
	c.closed(2 * time.Second)
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Fatalf("closed after %v, before the deadline", d)
	}
	if n := len(f.created); n != 0 {
		t.Fatalf("%d onward streams created", n)
	}
}

// TestServerStateConversions: docs/wire.md §7.3.
func TestServerStateConversions(t *testing.T) {
	f := newFakeOnward(mintest)
	srv, name := startServer(t, f, nil)
	c := dialRaw(t, name)
	c.create("mintest")
	s := <-f.created
	for _, st := range []event.State{event.Creating, event.Connecting, event.Connected, event.QoSAckLocal,
		event.QoSAckLocal, event.QoSNackLocal, event.UpstreamLinkRetry, event.SinkJoin, 1530, event.Disconnected,
		event.AllRetriesFailed, event.Connecting, event.ServerTxn /* illegal for lws: withheld */, event.Connected} {
		s.emit(st)
	}
	c.expectState(event.Connecting, event.Connected, event.QoSAckRemote, event.QoSAckRemote, event.QoSNackRemote,
		1530, event.Disconnected, event.Poll, event.AllRetriesFailed, event.Connecting, event.Connected)
	if n := srv.IllegalTransitions(); n != 1 {
		t.Fatalf("IllegalTransitions = %d, want 1", n)
	}
}

// TestServerRxAndMetadata: rx, perf and captured metadata (before the state
// that follows them) in order.
func TestServerRxAndMetadata(t *testing.T) {
	f := newFakeOnward(mintest)
	_, name := startServer(t, f, nil)
	c := dialRaw(t, name)
	c.create("mintest")
	s := <-f.created
	s.emit(event.Connecting)
	c.expectState(event.Connecting)
	s.mu.Lock()
	s.md["ctype"] = "text/html"
	s.mu.Unlock()
	s.emit(event.Connected)
	big := bytes.Repeat([]byte("x"), 70000)
	s.ev <- event.Event{Kind: event.PayloadEvent, Payload: big, Flags: event.SOM | event.EOM}
	s.ev <- event.Event{Kind: event.PayloadEvent, Payload: []byte(`{"perf":1}`), Flags: event.SOM | event.EOM | event.PerfJSON}
	if m, ok := c.next().(*RxMetadata); !ok || m.Name != "ctype" || string(m.Value) != "text/html" {
		t.Fatalf("got %#v, want METADATA ctype", m)
	}
	c.expectState(event.Connected)
	p1, ok1 := c.next().(*RxPayload)
	p2, ok2 := c.next().(*RxPayload)
	if !ok1 || !ok2 || len(p1.Payload) != MaxPayload || p1.Flags != event.SOM || p2.Flags != event.EOM || len(p1.Payload)+len(p2.Payload) != len(big) {
		t.Fatalf("split rx: %v %v", p1, p2)
	}
	if m, ok := c.next().(*Perf); !ok || string(m.JSON) != `{"perf":1}` {
		t.Fatalf("got %#v, want PERF", m)
	}
}

func hexBytes(t *testing.T, s string) []byte {
	t.Helper()
	var out []byte
	var hi = -1
	for _, r := range s {
		var v int
		switch {
		case r >= '0' && r <= '9':
			v = int(r - '0')
		case r >= 'a' && r <= 'f':
			v = int(r-'a') + 10
		case r >= 'A' && r <= 'F':
			v = int(r-'A') + 10
		default:
			continue
		}
		if hi < 0 {
			hi = v
		} else {
			out = append(out, byte(hi<<4|v))
			hi = -1
		}
	}
	return out
}

// TestServerEarlyConnected: HTTP bodies (docs/wire.md §6.3): CONNECTED with
// CONNECTING, the onward CONNECTED not repeated, a failure before it
// reported as DISCONNECTED.
func TestServerEarlyConnected(t *testing.T) {
	f := newFakeOnward(map[string]OnwardInfo{"post": {Rideshares: []string{"post"}, EarlyConnected: true}})
	srv, name := startServer(t, f, nil)
	c := dialRaw(t, name)
	c.create("post")
	s := <-f.created
	for _, st := range []event.State{event.Poll, event.Connecting, 1530, event.Connected, event.QoSAckRemote,
		event.Disconnected, event.Poll, event.Connecting, event.Unreachable, event.AllRetriesFailed} {
		s.emit(st)
	}
	c.expectState(event.Poll, event.Connecting, event.Connected, 1530, event.QoSAckRemote, event.Disconnected,
		event.Poll, event.Connecting, event.Connected, event.Disconnected, event.Poll, event.AllRetriesFailed)
	if n := srv.IllegalTransitions(); n != 0 {
		t.Fatalf("IllegalTransitions = %d", n)
	}
}
