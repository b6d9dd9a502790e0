package test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

// TestWSSendOrderUnderBackpressure: a ws stream sends 4000 messages of
// 1 B to 16 KiB (framed and written from Send while nothing is queued,
// some as fragments) to a server that does
// not read for the first 300 ms, so the socket fills, a frame written from
// Send is cut short and its tail must go out before anything else,
// including the pongs to the server's pings. The server checks every message's bytes and
// order; a frame interleaved with another breaks its parse.
func TestWSSendOrderUnderBackpressure(t *testing.T) {
	const msgs = 4000
	sizes := []int{1, 64, 1000, 16 << 10, 7, 9000, 16 << 10, 5000, 16 << 10, 300}
	result := make(chan error, 1)
	up := websocket.Upgrader{}
	hts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		time.Sleep(300 * time.Millisecond)
		want := make([]byte, 16<<10)
		var off int64
		for i := range msgs {
			if i%100 == 0 {
				_ = c.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second))
			}
			_, p, err := c.ReadMessage()
			if err != nil {
				result <- err
				return
			}
			n := sizes[i%len(sizes)]
			seqFill(want[:n], off)
			if !bytes.Equal(p, want[:n]) {
				result <- &offsetError{off}
				return
			}
			off += int64(n)
		}
		result <- nil
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}))
	defer hts.Close()
	port := hts.Listener.Addr().(*net.TCPAddr).Port
	st := &policy.Streamtype{Name: "w", Protocol: policy.WS, Endpoint: "127.0.0.1", Port: uint16(port), HTTPURL: "/", ClientCert: -1, WSBinary: true}
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := connectDiscarding(t, ctx, rt, "w")
	// A server-side mismatch ends the test at once with the server's
	// finding, instead of leaving the client's Send parked until ctx ends.
	server := make(chan error, 1)
	go func() {
		err := <-result
		if err != nil {
			cancel()
		}
		server <- err
	}()
	fail := func(format string, args ...any) {
		t.Helper()
		select {
		case err := <-server:
			if err != nil {
				t.Fatalf("server: %v (client: "+format+")", append([]any{err}, args...)...)
			}
		default:
		}
		t.Fatalf(format, args...)
	}
	buf := make([]byte, 16<<10)
	var off int64
	for i := range msgs {
		n := sizes[i%len(sizes)]
		seqFill(buf[:n], off)
		if n == 9000 { // three fragments: SOM, middle, EOM
			for _, part := range []struct {
				a, b  int
				flags ss.Flags
			}{{0, 3000, ss.SOM}, {3000, 6000, 0}, {6000, 9000, ss.EOM}} {
				if err := s.Write(ctx, buf[part.a:part.b], part.flags); err != nil {
					fail("Write %d: %v", i, err)
				}
			}
		} else if err := s.Send(ctx, buf[:n]); err != nil {
			fail("Send %d: %v", i, err)
		}
		off += int64(n)
	}
	select {
	case err := <-server:
		if err != nil {
			t.Fatalf("server: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("server did not receive every message")
	}
	s.Destroy(context.Background())
}
