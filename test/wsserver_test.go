package test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gorilla/websocket"
)

// wsServer starts a loopback WebSocket server (gorilla) that answers the
// handshake with hdr and hands each connection to handle, and returns its
// port; it closes at the test's end.
func wsServer(t *testing.T, hdr http.Header, handle func(*websocket.Conn)) int {
	t.Helper()
	up := websocket.Upgrader{}
	hts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, hdr)
		if err != nil {
			return
		}
		defer c.Close()
		handle(c)
	}))
	t.Cleanup(hts.Close)
	return hts.Listener.Addr().(*net.TCPAddr).Port
}

// wsEcho sends every message back as it came until the connection ends.
func wsEcho(c *websocket.Conn) {
	for {
		mt, p, err := c.ReadMessage()
		if err != nil || c.WriteMessage(mt, p) != nil {
			return
		}
	}
}
