// Command perf fetches a body with a "perf": true streamtype: besides the
// payload, each connection delivers one connection-performance report, a
// JSON rx chunk flagged PERF_JSON (ss.PerfJSON) with the connection's timings.
//
//	go run ./examples/perf
package main

import (
	"context"
	_ "embed"
	"encoding/json"
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
		fmt.Fprint(w, strings.Repeat("perf ", 20000))
	})}
	go hs.Serve(ln)
	defer hs.Close()

	p, _, err := policy.Parse(policyJSON, policy.Options{Strict: true})
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if p, _, err = policy.ApplyOverlay(p, fmt.Appendf(nil, `{"s": [{"timed": {"port": %d}}]}`, port), policy.Options{}); err != nil {
		return err
	}
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	s, err := rt.Create(ctx, "timed")
	if err != nil {
		return err
	}
	s.RequestTx()
	body, reports := 0, 0
	for ev := range s.Events() {
		fmt.Println("event:", ev)
		switch {
		case ev.Kind == ss.PayloadEvent && ev.Flags&ss.PerfJSON != 0:
			var report map[string]any
			if err := json.Unmarshal(ev.Payload, &report); err != nil {
				return fmt.Errorf("perf report is not JSON: %v", err)
			}
			reports++
			fmt.Printf("perf report: %s\n", ev.Payload)
		case ev.Kind == ss.PayloadEvent:
			body += len(ev.Payload)
		case ev.State == ss.Disconnected, ev.State == ss.AllRetriesFailed:
			s.Destroy(ctx) // the report comes before the connection's DISCONNECTED
		}
	}
	fmt.Printf("body: %d bytes, perf reports: %d\n", body, reports)
	if reports == 0 {
		return fmt.Errorf("no perf report")
	}
	return nil
}
