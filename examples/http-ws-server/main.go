// Command http-ws-server serves HTTP and WebSocket from one h1 server
// streamtype. Each accepted stream is an ordinary *ss.Stream: SERVER_TXN
// marks an HTTP request (answered with Respond, SetMetadata, SetTxLen and
// Send), SERVER_UPGRADE a WebSocket upgrade (then messages are echoed). The
// program then acts as its own client with net/http and gorilla/websocket.
//
//	go run ./examples/http-ws-server
package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

//go:embed policy.json
var policyJSON []byte

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	p, _, err := policy.Parse(policyJSON, policy.Options{Strict: true})
	if err != nil {
		return err
	}
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	srv, err := rt.Serve(ctx, "web") // "port": 0 picks a free port
	if err != nil {
		return err
	}
	defer srv.Close(ctx)
	go func() {
		for acc := range srv.Accepted() {
			go serve(ctx, acc)
		}
	}()
	addr := srv.Addr().String()

	// An HTTP client.
	resp, err := http.Get("http://" + addr + "/greet?name=gopher")
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("http: %d %s %q\n", resp.StatusCode, resp.Header.Get("Content-Type"), body)

	// A WebSocket client.
	d := websocket.Dialer{Subprotocols: []string{"echo.v1"}}
	c, _, err := d.DialContext(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
		return err
	}
	_, msg, err := c.ReadMessage()
	if err != nil {
		return err
	}
	fmt.Printf("ws: %s\n", msg)
	return nil
}

// serve handles one accepted stream until it ends.
func serve(ctx context.Context, acc *ss.Stream) {
	upgraded := false
	var msg []byte
	for ev := range acc.Events() {
		switch {
		case ev.State == ss.ServerTxn: // request headers are in; metadata is set
			path, _ := acc.Metadata("path")
			name, _ := acc.Metadata("name") // a declared URL query argument
			body := []byte("hello " + name + " at " + path)
			acc.Respond(200)
			acc.SetMetadata("mime", "text/plain") // sent as Content-Type
			acc.SetTxLen(int64(len(body)))
			acc.Send(ctx, body)
		case ev.State == ss.ServerUpgrade:
			upgraded = true
		case ev.Kind == ss.PayloadEvent && upgraded:
			msg = append(msg, ev.Payload...)
			if ev.Flags&ss.EOM != 0 {
				acc.Send(ctx, append([]byte("echo "), msg...))
				msg = msg[:0]
			}
		}
	}
}
