package ss_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
	"github.com/securestreams/ss/transport/ws"
)

// TestWSFramingRefusedAtSend: on a ws stream, SOM while a message is open
// and a chunk without SOM while none is open are refused by Write/Send and
// never reach the wire (streams.md §11.6); the well-framed chunks around
// them arrive as the messages they form.
func TestWSFramingRefusedAtSend(t *testing.T) {
	got := make(chan string, 8)
	up := websocket.Upgrader{}
	hts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			_, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			got <- string(p)
		}
	}))
	defer hts.Close()
	port := hts.Listener.Addr().(*net.TCPAddr).Port
	st := &policy.Streamtype{Name: "w", Protocol: policy.WS, Endpoint: "127.0.0.1", Port: uint16(port), HTTPURL: "/", ClientCert: -1}
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
	ctx := context.Background()
	s, err := rt.Create(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	refused := func(err error) {
		t.Helper()
		if !errors.Is(err, ws.ErrFraming) {
			t.Fatalf("err = %v, want ws.ErrFraming", err)
		}
	}
	refused(s.Write(ctx, []byte("x"), 0))      // no message open
	refused(s.Write(ctx, []byte("x"), ss.EOM)) // no SOM, none open
	if err := s.Write(ctx, []byte("a"), ss.SOM); err != nil {
		t.Fatal(err)
	}
	refused(s.Write(ctx, []byte("y"), ss.SOM))        // SOM while open
	refused(s.Send(ctx, []byte("z")))                 // Send is SOM|EOM
	refused(s.Write(ctx, []byte("y"), ss.SOM|ss.EOM)) // SOM while open
	if err := s.Write(ctx, []byte("b"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, []byte("c"), ss.EOM); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, []byte("whole")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"abc", "whole"} {
		select {
		case m := <-got:
			if m != want {
				t.Fatalf("server got %q, want %q", m, want)
			}
		case <-time.After(wait):
			t.Fatalf("server did not get %q; events %s", want, r.String())
		}
	}
	if st := s.Stats(); st.TxBytes != 1+1+1+5 {
		t.Fatalf("TxBytes = %d: refused chunks were counted", st.TxBytes)
	}
	if err := s.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	r.closed(wait)
	r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED", "DESTROYING")
	select {
	case m := <-got:
		t.Fatalf("server got an extra message %q", m)
	default:
	}
}
