// Command ssproxy is the Secure Streams proxy (spec/wire.md): it listens for
// proxied clients (libwebsockets' or this library's) and fulfils each
// client stream, one link per stream, with a stream of its own runtime
// created from the policy file.
//
//	ssproxy -policy FILE [-listen unix:@proxy.ss.lws|unix:/path|tcp:127.0.0.1:PORT] [-v]
//
// The default address is the Linux abstract socket @proxy.ss.lws, as
// libwebsockets uses. A client that disconnects has its stream destroyed;
// a malformed frame closes only that client's link (logged with -v).
// SIGINT or SIGTERM closes the listener, destroys every stream and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
	"github.com/securestreams/ss/proxy"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("ssproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	policyFile := fs.String("policy", "", "policy `file` (required)")
	listen := fs.String("listen", proxy.DefaultAddress, "listen `address`: unix:@name (abstract), unix:/path or tcp:host:port")
	verbose := fs.Bool("v", false, "log to stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *policyFile == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: ssproxy -policy FILE [-listen ADDRESS] [-v]")
		return 2
	}
	var logger *slog.Logger
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	pol, _, err := policy.ParseFile(*policyFile, policy.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "ssproxy: %s: %v\n", *policyFile, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Buffers are per stream, from each streamtype's proxy_buflen* keys
	// (Runtime.ServeProxy).
	rt, err := ss.New(ctx, ss.Config{Policy: pol, Logger: logger})
	if err != nil {
		fmt.Fprintf(stderr, "ssproxy: %v\n", err)
		return 1
	}
	ln, err := proxy.Listen(*listen)
	if err != nil {
		fmt.Fprintf(stderr, "ssproxy: listen %s: %v\n", *listen, err)
		rt.Close(context.Background())
		return 1
	}
	if logger != nil {
		logger.Info("ssproxy: listening", "address", *listen, "policy", *policyFile)
	}
	code := 0
	if err := rt.ServeProxy(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "ssproxy: %v\n", err)
		code = 1
	}
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.Close(cctx); err != nil {
		fmt.Fprintf(stderr, "ssproxy: close: %v\n", err)
		code = 1
	}
	if logger != nil {
		logger.Info("ssproxy: stopped")
	}
	return code
}
