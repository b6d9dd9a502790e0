// Command http-post sends three POST bodies with h1 client streams: one
// whole message (Send: Content-Length), one announced with SetTxLen and
// written in two fragments (Content-Length), and one of unknown length written
// in fragments (Transfer-Encoding: chunked). The loopback server answers with
// what it received.
//
//	go run ./examples/http-post
package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
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
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "received %d bytes %q, Content-Length %d, chunked %v",
			len(body), body, r.ContentLength, len(r.TransferEncoding) > 0)
	})}
	go hs.Serve(ln)
	defer hs.Close()

	p, _, err := policy.Parse(policyJSON, policy.Options{Strict: true})
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if p, _, err = policy.ApplyOverlay(p, fmt.Appendf(nil, `{"s": [{"upload": {"port": %d}}]}`, port), policy.Options{}); err != nil {
		return err
	}
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	posts := []struct {
		name string
		send func(s *ss.Stream) error
	}{
		{"known length, one message", func(s *ss.Stream) error {
			return s.Send(ctx, []byte("hello")) // SOM|EOM, Content-Length: 5
		}},
		{"known length, two fragments", func(s *ss.Stream) error {
			if err := s.SetTxLen(11); err != nil { // Content-Length: 11
				return err
			}
			if err := s.Write(ctx, []byte("hello "), ss.SOM); err != nil {
				return err
			}
			return s.Write(ctx, []byte("world"), ss.EOM)
		}},
		{"unknown length, three fragments", func(s *ss.Stream) error {
			for i, part := range []string{"one ", "two ", "three"} {
				var f ss.Flags
				if i == 0 {
					f = ss.SOM
				}
				if i == 2 {
					f = ss.EOM
				}
				if err := s.Write(ctx, []byte(part), f); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for _, post := range posts {
		answer, err := postOnce(ctx, rt, post.send)
		if err != nil {
			return fmt.Errorf("%s: %w", post.name, err)
		}
		fmt.Printf("%s: %s\n", post.name, answer)
	}
	return nil
}

// postOnce creates a stream, sends a body with send and returns the
// response body once the transaction is acknowledged.
func postOnce(ctx context.Context, rt *ss.Runtime, send func(*ss.Stream) error) (string, error) {
	s, err := rt.Create(ctx, "upload", ss.WithMetadata("ctype", "text/plain"))
	if err != nil {
		return "", err
	}
	defer s.Destroy(ctx)
	go func() {
		if err := send(s); err != nil {
			log.Print(err)
		}
	}()
	var answer []byte
	for ev := range s.Events() {
		switch {
		case ev.Kind == ss.PayloadEvent:
			answer = append(answer, ev.Payload...)
		case ev.State == ss.QoSAckRemote:
			return string(answer), nil
		case ev.State == ss.QoSNackRemote, ev.State == ss.AllRetriesFailed:
			return "", fmt.Errorf("failed: %v (%v)", ev.State, ev.Err)
		}
	}
	return "", fmt.Errorf("stream ended")
}
