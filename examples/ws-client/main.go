// Command ws-client talks to a WebSocket echo server through a ws client
// stream: a whole message with Send, then a message written as two frames
// (Write with SOM, then EOM); each echo arrives as one message. The server is
// a loopback gorilla/websocket echo that checks the offered subprotocol.
//
//	go run ./examples/ws-client
package main

import (
	"context"
	_ "embed"
	"fmt"
	"log"
	"net"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	up := websocket.Upgrader{Subprotocols: []string{"chat.v1"}}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			t, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			c.WriteMessage(t, append([]byte("echo "+r.URL.Path+": "), msg...))
		}
	})}
	go hs.Serve(ln)
	defer hs.Close()

	p, _, err := policy.Parse(policyJSON, policy.Options{Strict: true})
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if p, _, err = policy.ApplyOverlay(p, fmt.Appendf(nil, `{"s": [{"chat": {"port": %d}}]}`, port), policy.Options{}); err != nil {
		return err
	}
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	// nailed_up: the stream connects as soon as it is created.
	s, err := rt.Create(ctx, "chat", ss.WithMetadata("room", "lobby"))
	if err != nil {
		return err
	}
	go func() {
		s.Send(ctx, []byte("hello"))              // one message, one TEXT frame
		s.Write(ctx, []byte("two "), ss.SOM)      // a message in two frames
		s.Write(ctx, []byte("fragments"), ss.EOM) // FIN
	}()
	var msg []byte
	got := 0
	for ev := range s.Events() {
		switch {
		case ev.Kind == ss.StateEvent:
			fmt.Println("state:", ev.State)
			if ev.State == ss.AllRetriesFailed {
				return fmt.Errorf("cannot connect: %v", ev.Err)
			}
		case ev.Kind == ss.PayloadEvent:
			msg = append(msg, ev.Payload...)
			if ev.Flags&ss.EOM != 0 { // the end of one message
				fmt.Printf("message: %s\n", msg)
				msg = msg[:0]
				if got++; got == 2 {
					s.Destroy(ctx) // DISCONNECTED, DESTROYING, then the loop ends
				}
			}
		}
	}
	if got != 2 {
		return fmt.Errorf("%d echoes, want 2", got)
	}
	return nil
}
