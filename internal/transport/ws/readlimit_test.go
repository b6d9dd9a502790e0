package ws

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestReadLimit: a message longer than ws_max_rx_message ends the
// connection with an error wrapping ErrConnLost and websocket.ErrReadLimit,
// and no more than the limit is delivered; one within it is delivered.
func TestReadLimit(t *testing.T) {
	for _, c := range []struct {
		limit   uint32
		frame   string
		limited bool
	}{
		{8, "\x82\x04abcd", false},
		{8, "\x82\x10" + "0123456789abcdef", true},
		{8, "\x02\x05abcde\x80\x05fghij", true}, // fragments add up over the limit
	} {
		st := wsType("127.0.0.1:1")
		st.WSMaxRxMessage = c.limit
		a := attempt(st, newTx())
		cli, srv := net.Pipe()
		go fuzzPeer(srv, []byte(c.frame))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		d := websocket.Dialer{NetDialContext: func(context.Context, string, string) (net.Conn, error) { return cli, nil }}
		conn, _, err := d.DialContext(ctx, "ws://127.0.0.1:1/", nil)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		sink := newSink()
		res := RunConn(ctx, conn, a, sink)
		cancel()
		n := 0
		sink.mu.Lock()
		for _, p := range sink.data {
			n += len(p)
		}
		sink.mu.Unlock()
		if got := errors.Is(res.Err, websocket.ErrReadLimit); got != c.limited || (got && !errors.Is(res.Err, ErrConnLost)) {
			t.Errorf("%q: err = %v; want read limit %v", c.frame, res.Err, c.limited)
		}
		if n > int(c.limit) {
			t.Errorf("%q: %d bytes delivered over a limit of %d", c.frame, n, c.limit)
		}
		if !c.limited && n != 4 {
			t.Errorf("%q: %d bytes delivered, want 4", c.frame, n)
		}
	}
}
