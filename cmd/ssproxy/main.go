// Command ssproxy is the Secure Streams proxy (docs/proxy.md): it listens
// for proxied clients (libwebsockets' or this library's) and fulfils each
// client stream, one link per stream, with a stream of its own runtime
// created from the policy file.
//
//	ssproxy -policy FILE [-listen unix:@proxy.ss.lws|unix:/path|tcp:127.0.0.1:PORT]
//	        [-log-level debug|info|warn|error] [-log-format text|json] [limits…]
//
// Run ssproxy -help for every flag; docs/proxy.md explains them, the
// limits (limits.go) and their defaults. The default address is the Linux
// abstract socket @proxy.ss.lws, as libwebsockets uses; an abstract socket
// has no file permissions, so any local user can connect to it (restrict
// with -allow-uid / -allow-gid, or listen on a filesystem socket).
//
// It logs its address and a summary of the policy at INFO; each link's peer
// credentials, ordinary closes and policy details at DEBUG; malformed input
// and refused links at WARN. A client that disconnects has its stream
// destroyed; a malformed frame closes only that client's link. SIGHUP
// reloads the policy file (existing links keep their streams; new streams
// use the new policy; a file that does not parse leaves the old policy in
// place, and says why). SIGINT or SIGTERM closes the listener, destroys
// every stream and exits 0; if that takes longer than -shutdown-timeout
// (default 1.5 s), or on a second signal, it exits 1 at once.
//
// Optional parts of the daemon (limits, credentials, policy fetching) live
// in their own files and register their flags and startup hooks with
// register (feature.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/securestreams/ss/internal/ssbridge"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/policy"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitNow ends the process when the shutdown deadline passes or a second
// signal arrives.
var exitNow = os.Exit

// DefaultShutdownTimeout bounds a graceful stop after SIGINT or SIGTERM.
const DefaultShutdownTimeout = 1500 * time.Millisecond

const usageLine = "usage: ssproxy -policy FILE [-listen ADDRESS] [flags]"

const description = `ssproxy is the Secure Streams proxy: local client processes (this library's
proxied runtimes, or libwebsockets clients) connect to it over SSSv1, one
connection ("link") per stream, and it fulfils each stream with the policy
file it was started with. Proxy clients are not trusted: every frame is
checked, and the limits below bound what any client can make it hold.

Addresses: unix:@name is a Linux abstract socket (the default,
unix:@proxy.ss.lws). An abstract socket has no file permissions:
ANY LOCAL USER can connect to it. Restrict it with -allow-uid/-allow-gid,
or use a filesystem socket (unix:/path, created with mode 0660).
tcp:host:port listens on TCP (peers there have no credentials).

Signals: SIGHUP reloads the policy file (existing links keep going); SIGINT
and SIGTERM stop the daemon (exit 0), within -shutdown-timeout at most.
`

func printHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s\n\n%s\nFlags:\n", usageLine, description)
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ssproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below, on stdout for -help
	policyFile := fs.String("policy", "", "policy `file` (JSON, required)")
	listen := fs.String("listen", proxy.DefaultAddress,
		"listen `address`: unix:@name (abstract: any local user can connect), unix:/path (mode 0660) or tcp:host:port")
	shutdown := fs.Duration("shutdown-timeout", DefaultShutdownTimeout,
		"after SIGINT/SIGTERM, exit (status 1) if stopping takes longer than this")
	var lf logFlags
	fs.StringVar(&lf.level, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&lf.format, "log-format", "text", "log `format` on stderr: text or json")
	fs.BoolVar(&lf.debug, "v", false, "same as -log-level debug")
	hs := make([]hooks, 0, len(features))
	for _, f := range features {
		hs = append(hs, f(fs))
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout, fs)
			return 0
		}
		// flag has printed what was wrong.
		fmt.Fprintf(stderr, "%s\nRun 'ssproxy -help' for the flags.\n", usageLine)
		return 2
	}
	usageErr := func(msg string) int {
		fmt.Fprintf(stderr, "ssproxy: %s\n%s\nRun 'ssproxy -help' for the flags.\n", msg, usageLine)
		return 2
	}
	if fs.NArg() != 0 {
		return usageErr(fmt.Sprintf("unexpected argument %q (ssproxy takes flags only)", fs.Arg(0)))
	}
	if *policyFile == "" {
		return usageErr("-policy is required")
	}
	if *shutdown <= 0 {
		return usageErr(fmt.Sprintf("-shutdown-timeout %v: must be positive", *shutdown))
	}
	if err := lf.check(); err != nil {
		return usageErr(err.Error())
	}
	if _, _, err := proxy.ParseAddress(*listen); err != nil {
		return usageErr(fmt.Sprintf("-listen: %v", err))
	}
	for _, h := range hs {
		if h.Check != nil {
			if err := h.Check(); err != nil {
				return usageErr(err.Error())
			}
		}
	}
	logger := lf.logger(stderr)
	d := &daemon{Logger: logger, PolicyFile: *policyFile, Listen: *listen}

	pol, diags, err := policy.ParseFile(*policyFile, policy.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "ssproxy: policy %s: %v\n", *policyFile, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigc)

	actors := actor.NewSystem(lf.actorLogger(stderr))
	closeActors := func(ctx context.Context) {
		if err := actors.Shutdown(ctx); err != nil {
			logger.Error("ssproxy: stopping the actor system", "err", err)
		}
	}
	cfg := ss.Config{Policy: pol, Logger: logger, Actors: actors}
	early := func() int {
		cctx, ccancel := context.WithTimeout(context.Background(), *shutdown)
		defer ccancel()
		closeActors(cctx)
		return 1
	}
	for _, h := range hs {
		if h.Configure != nil {
			if err := h.Configure(d, &cfg); err != nil {
				fmt.Fprintf(stderr, "ssproxy: %v\n", err)
				return early()
			}
		}
	}
	rt, err := ss.New(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "ssproxy: %v\n", err)
		return early()
	}
	d.rt = rt
	logPolicy(logger, pol, diags, *policyFile)
	code := 0
	var stops []func(context.Context)
	// stopAll runs the features' stops and closes the runtime, bounded by
	// the shutdown deadline.
	stopAll := func(deadline time.Time) {
		cctx, ccancel := context.WithDeadline(context.Background(), deadline)
		defer ccancel()
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i](cctx)
		}
		if err := rt.Close(cctx); err != nil {
			logger.Error("ssproxy: closing the runtime", "err", err)
			code = 1
		}
		closeActors(cctx)
	}
	srv := ssbridge.ProxyServer(rt)
	for _, h := range hs {
		if h.Server != nil {
			if err := h.Server(d, srv); err != nil {
				fmt.Fprintf(stderr, "ssproxy: %v\n", err)
				stopAll(time.Now().Add(*shutdown))
				return 1
			}
		}
	}
	for _, h := range hs {
		if h.Start != nil {
			stop, err := h.Start(ctx, d)
			if err != nil {
				fmt.Fprintf(stderr, "ssproxy: %v\n", err)
				stopAll(time.Now().Add(*shutdown))
				return 1
			}
			if stop != nil {
				stops = append(stops, stop)
			}
		}
	}
	ln, err := proxy.Listen(*listen)
	if err != nil {
		fmt.Fprintf(stderr, "ssproxy: listen %s: %v\n", *listen, err)
		stopAll(time.Now().Add(*shutdown))
		return 1
	}
	attrs := []any{"address", *listen, "pid", os.Getpid()}
	if strings.HasPrefix(ln.Addr().String(), "@") {
		attrs = append(attrs, "access", "any local user (abstract socket)")
	}
	logger.Info("ssproxy: listening", attrs...)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	var deadline time.Time
	stopped := make(chan struct{})
loop:
	for {
		select {
		case sig := <-sigc:
			if sig == syscall.SIGHUP {
				d.reload(ctx, hs)
				continue
			}
			if !deadline.IsZero() {
				logger.Error("ssproxy: second signal, exiting now", "signal", sig.String())
				exitNow(1)
				return 1
			}
			logger.Info("ssproxy: stopping", "signal", sig.String())
			deadline = time.Now().Add(*shutdown)
			t := time.AfterFunc(*shutdown, func() {
				logger.Error("ssproxy: not stopped within the shutdown timeout, exiting now", "timeout", shutdown.String())
				exitNow(1)
			})
			defer t.Stop()
			cancel()
		case err := <-served:
			if err != nil {
				logger.Error("ssproxy: accepting links failed", "err", err)
				code = 1
			}
			// Stop while still reading signals: a second one exits at once.
			served = nil
			if deadline.IsZero() {
				deadline = time.Now().Add(*shutdown)
			}
			go func() { stopAll(deadline); close(stopped) }()
		case <-stopped:
			break loop
		}
	}
	logger.Info("ssproxy: stopped")
	return code
}
