// Command metadata shows the three uses of a streamtype's metadata: values
// substituted into the URL (${id}, ${lang}), a value sent as a request header
// (request_id → X-Request-Id), and a response header captured into an item
// (ETag → etag). Values are per stream: set at Create with WithMetadata or
// later with SetMetadata, read with Metadata.
//
//	go run ./examples/metadata
package main

import (
	"context"
	_ "embed"
	"fmt"
	"log"
	"net"
	"net/http"
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
		w.Header().Set("ETag", `"v7"`)
		fmt.Fprintf(w, "path %s, query %s, X-Request-Id %s", r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Request-Id"))
	})}
	go hs.Serve(ln)
	defer hs.Close()

	p, _, err := policy.Parse(policyJSON, policy.Options{Strict: true})
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if p, _, err = policy.ApplyOverlay(p, fmt.Appendf(nil, `{"s": [{"item": {"port": %d}}]}`, port), policy.Options{}); err != nil {
		return err
	}
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	s, err := rt.Create(ctx, "item", ss.WithMetadata("id", "42"), ss.WithMetadata("lang", "en"))
	if err != nil {
		return err
	}
	if err := s.SetMetadata("request_id", "req-1"); err != nil {
		return err
	}
	if err := s.SetMetadata("nope", "x"); err != nil { // not declared by the streamtype
		fmt.Println("undeclared:", err)
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
	etag, _ := s.Metadata("etag")
	fmt.Printf("etag: %s\n", etag)
	if !ok {
		return fmt.Errorf("the GET failed")
	}
	return nil
}
