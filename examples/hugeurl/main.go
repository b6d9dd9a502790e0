// Command hugeurl sends a GET whose URL is built from a 64 KiB metadata
// value: metadata values and substituted URLs have no length limit here
// (libwebsockets keeps only the final 254-byte chunk of a long string).
//
//	go run ./examples/hugeurl
package main

import (
	"context"
	_ "embed"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "URL of %d bytes, q of %d bytes", len(r.RequestURI), len(r.URL.Query().Get("q")))
	})}
	go hs.Serve(ln)
	defer hs.Close()

	p, _, err := policy.Parse(policyJSON, policy.Options{Strict: true})
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if p, _, err = policy.ApplyOverlay(p, fmt.Appendf(nil, `{"s": [{"huge": {"port": %d}}]}`, port), policy.Options{}); err != nil {
		return err
	}
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	q := strings.Repeat("x", 64<<10)
	s, err := rt.Create(ctx, "huge", ss.WithMetadata("q", q))
	if err != nil {
		return err
	}
	s.RequestTx()
	ok := false
	for ev := range s.Events() {
		switch {
		case ev.Kind == ss.PayloadEvent && len(ev.Payload) > 0:
			fmt.Printf("server saw: %s\n", ev.Payload)
		case ev.State == ss.QoSAckRemote:
			ok = true
			s.Destroy(ctx)
		case ev.State == ss.QoSNackRemote, ev.State == ss.AllRetriesFailed:
			s.Destroy(ctx)
		}
	}
	if !ok {
		return fmt.Errorf("the GET failed")
	}
	return nil
}
