package ws_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/internal/transport/ws"
	"github.com/securestreams/ss/policy"
)

// printSink prints what RunConn reports.
type printSink struct{}

func (printSink) State(s event.State, _ uint32) { fmt.Println("state", s) }
func (printSink) SetMetadata(n, v string)       {}
func (printSink) ValidityConfirmed()            {}
func (printSink) Logger() *slog.Logger          { return slog.New(slog.DiscardHandler) }
func (printSink) Rx(_ context.Context, p []byte, f event.Flags) error {
	fmt.Printf("rx %v %q\n", f, p)
	return nil
}

// A server runs RunConn on the connection it upgraded; here the client is a
// plain gorilla client that sends one message and closes normally.
func ExampleRunConn() {
	results := make(chan transport.Result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		st := &policy.Streamtype{Name: "srv", Protocol: policy.H1, Server: true}
		a := &transport.Attempt{Type: st, Env: transport.Env{}.Defaults()}
		results <- ws.RunConn(r.Context(), c, a, printSink{})
	}))
	defer srv.Close()

	c, _, err := websocket.DefaultDialer.Dial("ws://"+strings.TrimPrefix(srv.URL, "http://"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	c.WriteMessage(websocket.TextMessage, []byte("hello"))
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	res := <-results
	fmt.Println("err:", res.Err)
	// Output:
	// rx SOM|EOM "hello"
	// err: <nil>
}
