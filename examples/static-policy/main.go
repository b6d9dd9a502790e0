// Command static-policy uses a policy compiled into the program: sspolicy gen
// turns policy.json into Go code (policy_gen.go) that builds the same
// *policy.Policy with no JSON parsing at run time, the counterpart of
// libwebsockets' policy2c. Regenerate it after editing policy.json with
//
//	go generate ./examples/static-policy
//
// and run the program with
//
//	go run ./examples/static-policy
package main

//go:generate go run github.com/securestreams/ss/cmd/sspolicy gen -strict -pkg main -var staticPolicy -o policy_gen.go policy.json

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	// A loopback echo server for the "echo" streamtype.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()

	fmt.Printf("policy %q compiled in: %d streamtype(s)\n", staticPolicy.Release, len(staticPolicy.Streamtypes))
	port := ln.Addr().(*net.TCPAddr).Port
	p, _, err := policy.ApplyOverlay(staticPolicy, fmt.Appendf(nil, `{"s": [{"echo": {"port": %d}}]}`, port), policy.Options{})
	if err != nil {
		return err
	}
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)
	s, err := rt.Create(ctx, "echo")
	if err != nil {
		return err
	}
	if err := s.Send(ctx, []byte("static")); err != nil {
		return err
	}
	var got []byte
	for ev := range s.Events() {
		if ev.Kind == ss.PayloadEvent {
			if got = append(got, ev.Payload...); len(got) == len("static") {
				s.Destroy(ctx)
			}
		}
		if ev.State == ss.AllRetriesFailed {
			return fmt.Errorf("cannot connect: %v", ev.Err)
		}
	}
	fmt.Printf("echo: %s\n", got)
	return nil
}
