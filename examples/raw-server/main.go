// Command raw-server runs a raw TCP server streamtype that answers every
// chunk it receives in upper case. Raw streams have no message boundaries:
// each read is one rx chunk with flags 0, and Send writes bytes as they are.
// The program then connects to it with net.Dial.
//
//	go run ./examples/raw-server
package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"log"
	"net"
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
	p, _, err := policy.Parse(policyJSON, policy.Options{Strict: true})
	if err != nil {
		return err
	}
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	srv, err := rt.Serve(ctx, "upper")
	if err != nil {
		return err
	}
	defer srv.Close(ctx)
	go func() {
		for acc := range srv.Accepted() {
			go func() {
				for ev := range acc.Events() { // CREATING, CONNECTING, CONNECTED, rx..., DISCONNECTED, DESTROYING
					if ev.Kind == ss.PayloadEvent {
						acc.Send(ctx, bytes.ToUpper(ev.Payload))
					}
				}
			}()
		}
	}()

	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for _, line := range []string{"hello\n", "secure streams\n"} {
		if _, err := c.Write([]byte(line)); err != nil {
			return err
		}
		got, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		fmt.Printf("sent %q, got %q\n", line, got)
	}
	return nil
}
