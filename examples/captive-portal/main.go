// Command captive-portal shows captive portal detection (docs/captive-portal.md)
// on this machine. It starts two loopback HTTP servers, one that answers
// /generate_204 with 204 (the "internet") and one that redirects every
// request to a login page (a "portal"), and checks the network with the
// policy's captive_portal_detect streamtype. Like the libwebsockets demo,
// two flags apply a policy overlay that points the check elsewhere:
//
//	go run ./examples/captive-portal                     # network: InternetOK
//	go run ./examples/captive-portal -force-portal       # network: CaptivePortal
//	go run ./examples/captive-portal -force-no-internet  # network: NoInternet
//
// A stream of the "app" streamtype is held (Config.HoldUntilOnline) until the
// check reports InternetOK; the program says whether it got through.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "captive-portal:", err)
		os.Exit(1)
	}
}

// basePolicy checks the network against the "internet" server; "app" is
// what the application wants to reach.
const basePolicy = `{
  "release": "captive-portal-example",
  "s": [{
    "captive_portal_detect": {
      "protocol": "h1", "endpoint": "%[1]s", "http_method": "GET", "http_url": "generate_204",
      "http_expect": 204, "http_fail_redirect": true, "opportunistic": true, "timeout_ms": 3000
    },
    "app": { "protocol": "h1", "endpoint": "%[1]s", "http_method": "GET", "http_url": "hello" }
  }]
}`

// overlay points captive_portal_detect at another endpoint.
const overlay = `{"s": [{"captive_portal_detect": {"endpoint": %q}}]}`

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("captive-portal", flag.ContinueOnError)
	fs.SetOutput(out)
	forcePortal := fs.Bool("force-portal", false, "overlay: check against a server that redirects to a login page")
	forceNoInternet := fs.Bool("force-no-internet", false, "overlay: check against an endpoint that refuses connections")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()

	internet, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/generate_204" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		io.WriteString(w, "hello from the internet\n")
	}))
	if err != nil {
		return err
	}
	defer internet.Close()
	portal, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/login" {
			http.Redirect(w, r, "/login", http.StatusFound)
			return
		}
		io.WriteString(w, "<html>please log in</html>")
	}))
	if err != nil {
		return err
	}
	defer portal.Close()

	pol, _, err := policy.Parse([]byte(fmt.Sprintf(basePolicy, internet.Addr())), policy.Options{})
	if err != nil {
		return err
	}
	switch {
	case *forcePortal:
		pol, err = applyOverlay(pol, portal.Addr().String())
	case *forceNoInternet:
		// A unix socket path nobody listens on: every attempt is refused.
		pol, err = applyOverlay(pol, "+"+filepath.Join(os.TempDir(), fmt.Sprintf("ss-no-internet-%d.sock", os.Getpid())))
	}
	if err != nil {
		return err
	}

	rt, err := ss.New(ctx, ss.Config{Policy: pol, HoldUntilOnline: true})
	if err != nil {
		return err
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		rt.Close(cctx)
	}()
	state, err := rt.CheckNetwork(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "network: %s\n", state)

	s, err := rt.Create(ctx, "app")
	if err != nil {
		return err
	}
	defer func() {
		// Destroy, then read the rest of the events (DESTROYING, closed).
		s.Destroy(context.Background())
		for range s.Events() {
		}
	}()
	s.RequestTx()
	wait := time.NewTimer(time.Second)
	defer wait.Stop()
	for {
		select {
		case ev := <-s.Events():
			if ev.Kind == ss.PayloadEvent && len(ev.Payload) > 0 {
				fmt.Fprintf(out, "app: %s", ev.Payload)
			}
			if ev.Kind == ss.StateEvent && ev.State == ss.QoSAckRemote {
				return nil
			}
		case <-wait.C:
			fmt.Fprintln(out, "app: held until the network is InternetOK")
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func applyOverlay(base *policy.Policy, endpoint string) (*policy.Policy, error) {
	p, _, err := policy.ApplyOverlay(base, fmt.Appendf(nil, overlay, endpoint), policy.Options{})
	return p, err
}

// server is a loopback HTTP server.
type server struct {
	ln   net.Listener
	srv  *http.Server
	done chan error
}

func serve(h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, done: make(chan error, 1)}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

func (s *server) Addr() net.Addr { return s.ln.Addr() }

func (s *server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done // http.ErrServerClosed
}
