// Command stress runs many streams at once: -n client streams (default 500),
// each making one GET against a loopback server and checking its answer, all
// concurrently in one runtime. It prints how many succeeded and how long it
// took, and fails if any stream failed or any illegal state transition was
// counted.
//
//	go run ./examples/stress -n 2000
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

//go:embed policy.json
var policyJSON []byte

func main() {
	n := flag.Int("n", 500, "number of concurrent streams")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, *n); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, n int) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.URL.Path)
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
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	start := time.Now()
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := getOne(ctx, rt, i); err != nil {
				failed.Add(1)
				log.Printf("stream %d: %v", i, err)
				return
			}
			ok.Add(1)
		})
	}
	wg.Wait()
	fmt.Printf("%d/%d streams ok in %v\n", ok.Load(), n, time.Since(start).Round(time.Millisecond))
	if failed.Load() > 0 {
		return fmt.Errorf("%d streams failed", failed.Load())
	}
	if st := rt.Stats(); st.IllegalTransitions != 0 || st.Streams != 0 {
		return fmt.Errorf("runtime stats %+v: want no illegal transitions and no live streams", st)
	}
	fmt.Println("no live streams left, no illegal transitions")
	return nil
}

// getOne makes one GET on its own stream and checks the body.
func getOne(ctx context.Context, rt *ss.Runtime, i int) error {
	s, err := rt.Create(ctx, "get", ss.WithMetadata("n", strconv.Itoa(i)))
	if err != nil {
		return err
	}
	s.RequestTx()
	var body []byte
	var result error = fmt.Errorf("stream ended")
	for ev := range s.Events() {
		switch {
		case ev.Kind == ss.PayloadEvent:
			body = append(body, ev.Payload...)
		case ev.State == ss.QoSAckRemote:
			result = nil
			if want := "/n/" + strconv.Itoa(i); string(body) != want {
				result = fmt.Errorf("body %q, want %q", body, want)
			}
			s.Destroy(ctx)
		case ev.State == ss.QoSNackRemote, ev.State == ss.AllRetriesFailed:
			result = fmt.Errorf("%v: %v", ev.State, ev.Err)
			s.Destroy(ctx)
		}
	}
	return result
}
