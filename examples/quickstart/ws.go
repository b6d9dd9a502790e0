package main

import (
	"context"
	"fmt"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

// wsPolicy has an HTTP/1.1 server streamtype that accepts WebSocket upgrades
// for one subprotocol, and a ws client streamtype that offers it.
const wsPolicy = `{
  "release": "quickstart",
  "retry": [{ "quick": { "backoff": [100, 200], "conceal": 2, "jitterpc": 0 } }],
  "s": [{
    "ws_server": {
      "server": true, "protocol": "h1", "endpoint": "127.0.0.1", "port": %[1]d,
      "ws_subprotocol": "qs-echo"
    },
    "ws_client": {
      "protocol": "ws", "endpoint": "127.0.0.1", "port": %[1]d, "http_url": "echo",
      "ws_subprotocol": "qs-echo", "retry": "quick"
    }
  }]
}`

// wsEcho runs an ss WebSocket echo server and an ss ws client: one whole
// message (Send) and one sent as two frames (Write with SOM, then EOM); each
// comes back as one message, SOM|EOM.
func wsEcho(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	p, diags, err := policy.Parse([]byte(fmt.Sprintf(wsPolicy, port)), policy.Options{})
	for _, d := range diags {
		fmt.Println("policy:", d)
	}
	if err != nil {
		return err
	}
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	// The server: every upgraded stream echoes each message it receives.
	srv, err := rt.Serve(ctx, "ws_server")
	if err != nil {
		return err
	}
	go func() {
		for acc := range srv.Accepted() {
			go func() {
				var msg []byte
				for ev := range acc.Events() {
					if ev.Kind != ss.PayloadEvent {
						continue
					}
					msg = append(msg, ev.Payload...)
					if ev.Flags&ss.EOM != 0 {
						_ = acc.Send(ctx, msg)
						msg = nil
					}
				}
			}()
		}
	}()

	s, err := rt.Create(ctx, "ws_client")
	if err != nil {
		return err
	}
	if err := s.Send(ctx, []byte("hello, websocket")); err != nil {
		return err
	}
	if err := s.Write(ctx, []byte("two "), ss.SOM); err != nil {
		return err
	}
	if err := s.Write(ctx, []byte("frames"), ss.EOM); err != nil {
		return err
	}
	want := []string{"hello, websocket", "two frames"}
	var got []string
	for ev := range s.Events() {
		switch ev.Kind {
		case ss.StateEvent:
			fmt.Println("state:", ev.State)
			if ev.State == ss.AllRetriesFailed {
				return fmt.Errorf("could not connect")
			}
		case ss.PayloadEvent:
			fmt.Printf("rx(%v): %q\n", ev.Flags, ev.Payload)
			got = append(got, string(ev.Payload))
			if len(got) == len(want) {
				if err := s.Destroy(ctx); err != nil {
					return err
				}
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("echo %q, want %q", got, want)
	}
	if n := rt.Stats().IllegalTransitions; n != 0 {
		return fmt.Errorf("%d illegal state transitions", n)
	}
	return srv.Close(ctx)
}
