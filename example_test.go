package ss_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

// loadPolicy parses a policy and fails loudly; the examples' policies are
// constants with a port filled in.
func loadPolicy(doc string, args ...any) *policy.Policy {
	p, _, err := policy.Parse(fmt.Appendf(nil, doc, args...), policy.Options{Strict: true})
	if err != nil {
		panic(err)
	}
	return p
}

func port(addr net.Addr) int { return addr.(*net.TCPAddr).Port }

// A client stream makes one HTTP GET. RequestTx starts the transaction;
// QOS_ACK_REMOTE says the server answered 2xx and the body is complete;
// Destroy ends the stream, so the loop over Events ends.
func ExampleRuntime_Create() {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	defer web.Close()

	ctx := context.Background()
	p := loadPolicy(`{"s": [{"get": {
		"protocol": "h1", "endpoint": "127.0.0.1", "port": %d,
		"http_method": "GET", "http_url": "greeting"}}]}`, port(web.Listener.Addr()))
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	s, err := rt.Create(ctx, "get")
	if err != nil {
		panic(err)
	}
	s.RequestTx()
	for ev := range s.Events() {
		switch {
		case ev.Kind == ss.PayloadEvent && len(ev.Payload) > 0:
			fmt.Printf("payload %q\n", ev.Payload)
		case ev.Kind == ss.StateEvent:
			fmt.Println(ev.State)
			if ev.State == ss.QoSAckRemote || ev.State == ss.QoSNackRemote || ev.State == ss.AllRetriesFailed {
				s.Destroy(ctx)
			}
		}
	}
	// Output:
	// CREATING
	// POLL
	// CONNECTING
	// CONNECTED
	// payload "hello"
	// QOS_ACK_REMOTE
	// DISCONNECTED
	// DESTROYING
}

// A server streamtype listens; each accepted connection is an ordinary
// stream. This raw server answers in upper case.
func ExampleRuntime_Serve() {
	ctx := context.Background()
	p := loadPolicy(`{"s": [{"upper": {"server": true, "protocol": "raw", "endpoint": "127.0.0.1", "port": 0}}]}`)
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)
	srv, err := rt.Serve(ctx, "upper")
	if err != nil {
		panic(err)
	}
	go func() {
		for acc := range srv.Accepted() {
			go func() {
				for ev := range acc.Events() {
					if ev.Kind == ss.PayloadEvent {
						acc.Send(ctx, bytes.ToUpper(ev.Payload))
					}
				}
			}()
		}
	}()

	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Fprint(c, "hello\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(line)
	// Output:
	// HELLO
}

// A proxied runtime (Config.Proxy) has no policy of its own: each stream is
// fulfilled by an SS proxy, here another runtime serving the proxy on a unix
// socket (the ssproxy daemon does the same). The stream behaves like a local
// one.
func ExampleRuntime_ServeProxy() {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "via the proxy")
	}))
	defer web.Close()
	ctx := context.Background()

	dir, err := os.MkdirTemp("", "ss-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "proxy.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		panic(err)
	}
	p := loadPolicy(`{"s": [{"get": {"protocol": "h1", "endpoint": "127.0.0.1", "port": %d, "http_method": "GET"}}]}`, port(web.Listener.Addr()))
	proxyRT, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		panic(err)
	}
	defer proxyRT.Close(ctx)
	proxyCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- proxyRT.ServeProxy(proxyCtx, ln) }()
	defer func() { stop(); <-served }()

	rt, err := ss.New(ctx, ss.Config{Proxy: "unix:" + sock})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)
	s, err := rt.Create(ctx, "get")
	if err != nil {
		panic(err)
	}
	s.RequestTx()
	for ev := range s.Events() {
		if ev.Kind == ss.PayloadEvent && len(ev.Payload) > 0 {
			fmt.Printf("%s\n", ev.Payload)
		}
		if ev.State == ss.QoSAckRemote || ev.State == ss.QoSNackRemote || ev.State == ss.AllRetriesFailed {
			fmt.Println(ev.State)
			s.Destroy(ctx)
		}
	}
	// Output:
	// via the proxy
	// QOS_ACK_REMOTE
}

// Errors: Create refuses a streamtype the policy does not have, and a failed
// attempt carries its cause in Event.Err, where errors.As finds typed errors
// such as *ss.StatusError.
func Example_errors() {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer web.Close()
	ctx := context.Background()
	p := loadPolicy(`{"s": [{"get": {"protocol": "h1", "endpoint": "127.0.0.1", "port": %d, "http_method": "GET"}}]}`, port(web.Listener.Addr()))
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	_, err = rt.Create(ctx, "gte")
	fmt.Println(errors.Is(err, ss.ErrUnknownStreamtype))

	s, err := rt.Create(ctx, "get")
	if err != nil {
		panic(err)
	}
	s.RequestTx()
	for ev := range s.Events() {
		if ev.Kind != ss.StateEvent || ev.Err == nil {
			continue
		}
		var se *ss.StatusError
		if errors.As(ev.Err, &se) {
			fmt.Println(ev.State, se.Code, strings.ToLower(se.Status))
		} else {
			fmt.Println(ev.State, ev.Err)
		}
		if ev.State == ss.AllRetriesFailed { // no "retry" in the policy: the first failure is final
			s.Destroy(ctx)
		}
	}
	// Output:
	// true
	// UNREACHABLE 503 503 service unavailable
	// ALL_RETRIES_FAILED 503 503 service unavailable
}

// Recv reads a stream's events on the caller's goroutine, one at a time,
// in the order Events would give them. On a raw stream over a plain
// socket, Recv with nothing queued reads the socket itself: an echo costs
// no goroutine hand-off. After DESTROYING, Recv returns io.EOF.
func ExampleStream_Recv() {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()

	ctx := context.Background()
	p := loadPolicy(`{"s": [{"echo": {"protocol": "raw", "endpoint": "127.0.0.1", "port": %d}}]}`, port(echo.Addr()))
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	s, err := rt.Create(ctx, "echo")
	if err != nil {
		panic(err)
	}
	s.Send(ctx, []byte("ping"))
	for {
		ev, err := s.Recv(ctx)
		if err == io.EOF {
			break // after DESTROYING
		}
		if err != nil {
			panic(err)
		}
		if ev.Kind == ss.PayloadEvent {
			fmt.Printf("payload %q\n", ev.Payload)
			s.Destroy(ctx)
			continue
		}
		fmt.Println(ev.State)
	}
	// Output:
	// CREATING
	// POLL
	// CONNECTING
	// CONNECTED
	// payload "ping"
	// DISCONNECTED
	// DESTROYING
}
