// Command proxied-client runs a stream through a Secure Streams proxy. One
// runtime holds the policy and serves the proxy (what the ssproxy daemon
// does) on a unix socket; a second runtime, with only Config.Proxy and no
// policy, creates the stream. The proxied stream behaves like a local one,
// state for state; the SSSv1 wire format between them is libwebsockets'.
//
//	go run ./examples/proxied-client
package main

import (
	"context"
	_ "embed"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
		fmt.Fprint(w, "hello through the proxy")
	})}
	go hs.Serve(ln)
	defer hs.Close()

	p, _, err := policy.Parse(policyJSON, policy.Options{Strict: true})
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if p, _, err = policy.ApplyOverlay(p, fmt.Appendf(nil, `{"s": [{"get": {"port": %d}}]}`, port), policy.Options{}); err != nil {
		return err
	}

	// The proxy side: a runtime with the policy, serving SSSv1 on a unix socket.
	dir, err := os.MkdirTemp("", "ss-proxied-client-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "proxy.sock")
	pln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	proxyRT, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		return err
	}
	defer proxyRT.Close(ctx)
	proxyCtx, stopProxy := context.WithCancel(ctx)
	proxyDone := make(chan error, 1)
	go func() { proxyDone <- proxyRT.ServeProxy(proxyCtx, pln) }()
	defer func() { stopProxy(); <-proxyDone }()

	// The client side: no policy, every stream goes through the proxy.
	rt, err := ss.New(ctx, ss.Config{Proxy: "unix:" + sock})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)
	s, err := rt.Create(ctx, "get")
	if err != nil {
		return err
	}
	if err := s.RequestTx(); err != nil {
		return err
	}
	ok := false
	for ev := range s.Events() {
		switch {
		case ev.Kind == ss.PayloadEvent && len(ev.Payload) > 0:
			fmt.Printf("rx: %s\n", ev.Payload)
		case ev.State == ss.QoSAckRemote:
			ok = true
			s.Destroy(ctx)
		case ev.State == ss.QoSNackRemote, ev.State == ss.AllRetriesFailed:
			s.Destroy(ctx)
		}
		if ev.Kind == ss.StateEvent {
			fmt.Println("state:", ev.State)
		}
	}
	if !ok {
		return fmt.Errorf("the proxied GET failed")
	}
	return nil
}
