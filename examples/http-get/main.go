// Command http-get fetches one URL with an h1 client stream and ends its
// event loop: RequestTx starts the transaction, QOS_ACK_REMOTE says the
// server answered 2xx with the whole body, Destroy ends the stream (DESTROYING,
// then the channel closes).
//
//	go run ./examples/http-get
//
// The program serves the URL itself on a loopback port and points the
// policy's "get" streamtype at it with an overlay.
package main

import (
	"context"
	_ "embed"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

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
	// A loopback HTTP server standing in for the real one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "hello from %s\n", r.URL.Path)
	})}
	go hs.Serve(ln)
	defer hs.Close()

	p, _, err := policy.Parse(policyJSON, policy.Options{Strict: true})
	if err != nil {
		return err
	}
	// Point "get" at the loopback server (an overlay patches keys of a streamtype).
	port := ln.Addr().(*net.TCPAddr).Port
	p, _, err = policy.ApplyOverlay(p, fmt.Appendf(nil, `{"s": [{"get": {"port": %d}}]}`, port), policy.Options{})
	if err != nil {
		return err
	}

	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	s, err := rt.Create(ctx, "get", ss.WithMetadata("name", "hello"))
	if err != nil {
		return err
	}
	if err := s.RequestTx(); err != nil { // one transaction
		return err
	}
	ok := false
	for ev := range s.Events() { // ends when the channel closes, after DESTROYING
		fmt.Fprintln(os.Stderr, "event:", ev)
		switch {
		case ev.Kind == ss.PayloadEvent:
			os.Stdout.Write(ev.Payload)
		case ev.State == ss.QoSAckRemote: // 2xx, body complete
			ok = true
			s.Destroy(ctx)
		case ev.State == ss.QoSNackRemote, ev.State == ss.AllRetriesFailed:
			s.Destroy(ctx)
		}
	}
	ctype, _ := s.Metadata("ctype") // the response's Content-Type, captured into metadata
	if !ok {
		return fmt.Errorf("the GET failed")
	}
	fmt.Printf("content-type: %s\n", ctype)
	return nil
}
