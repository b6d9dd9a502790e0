package httpserver

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"slices"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport/ws"
)

// isUpgrade reports whether r asks for a websocket upgrade.
func isUpgrade(r *http.Request) bool { return websocket.IsWebSocketUpgrade(r) }

// offeredSubprotocols is the client's Sec-WebSocket-Protocol list, in order.
func offeredSubprotocols(r *http.Request) []string { return websocket.Subprotocols(r) }

// upgrade handles a websocket upgrade request on an h1 connection of a
// streamtype with ws_subprotocol (docs/streams.md §10.2): with that subprotocol
// offered, it reports the request metadata, CONNECTED, SERVER_UPGRADE and
// runs the ws message pump until the websocket ends; otherwise (or when the
// connection already carried a transaction) it answers 400 and the stream
// ends.
func (s *session) upgrade(w http.ResponseWriter, r *http.Request) {
	want := s.a.Type.WSSubprotocol
	offered := offeredSubprotocols(r)
	if s.txns > 0 || !slices.Contains(offered, want) {
		if s.txns > 0 {
			s.fail(fmt.Errorf("%w: upgrade after a transaction on the same connection", ErrSubprotocol))
		} else {
			s.fail(fmt.Errorf("%w: want %q, client offered %q", ErrSubprotocol, want, offered))
		}
		refuse(w, http.StatusBadRequest)
		return
	}
	s.txns++
	s.reportRequest(r)
	up := websocket.Upgrader{
		Subprotocols: []string{want},
		// The policy has no origin rule; lws does not check it either.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			s.fail(fmt.Errorf("%w: websocket handshake: %w", ErrConnClosed, reason))
			refuse(w, status)
		},
	}
	c, err := up.Upgrade(hijackRecorder{w, s}, r, nil)
	if err != nil {
		if s.hijacked.Load() {
			// gorilla closed the hijacked connection; net/http will not
			// report it closed.
			s.fail(fmt.Errorf("%w: websocket handshake: %w", ErrConnClosed, err))
			s.l.forget(s.conn)
			s.finish()
		}
		return
	}
	s.l.forget(s.conn)
	s.sink.State(event.Connected, 0)
	s.sink.State(event.ServerUpgrade, 0)
	res := ws.RunConn(s.ctx, c, s.a, s.sink)
	if res.Err != nil {
		s.fail(res.Err)
	}
	s.finish()
}

// refuse answers status and closes the connection afterwards.
func refuse(w http.ResponseWriter, status int) {
	w.Header().Set("Connection", "close")
	w.Header()["Content-Type"] = nil
	w.WriteHeader(status)
}

// hijackRecorder notes in the session when the connection is hijacked.
type hijackRecorder struct {
	http.ResponseWriter
	s *session
}

func (h hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		h.s.hijacked.Store(true)
	}
	return c, rw, err
}
