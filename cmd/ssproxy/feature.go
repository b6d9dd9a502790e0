package main

import (
	"context"
	"flag"
	"log/slog"
	"sync"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/policy"
)

// A feature is an optional part of ssproxy that lives in a file of its own
// (limits.go, blobs.go, fetch.go, …). It registers itself from an init
// function; main.go does not need to know about it:
//
//	func init() { register(credentials) }
//
//	func credentials(fs *flag.FlagSet) hooks {
//		file := fs.String("blobs", "", "credentials `file`")
//		return hooks{Start: func(ctx context.Context, d *daemon) (func(context.Context), error) {
//			... uses *file, d.Runtime(), d.Logger ...
//		}}
//	}
//
// The function is called once per run (so flag variables are per run, which
// keeps run testable in-process) and returns the hooks, each optional.
type feature func(fs *flag.FlagSet) hooks

// hooks are a feature's entry points, called in this order.
type hooks struct {
	// Check validates the feature's flags once they are parsed. An error
	// is a usage error: printed with the usage line, exit status 2.
	Check func() error
	// Configure adjusts the runtime's configuration before ss.New.
	Configure func(d *daemon, cfg *ss.Config) error
	// Server adjusts the proxy server before it accepts links.
	Server func(d *daemon, srv *proxy.Server) error
	// Start runs once the runtime exists, before links are accepted. The
	// returned stop function (may be nil) runs at shutdown, within the
	// shutdown deadline; ctx ends when the daemon stops.
	Start func(ctx context.Context, d *daemon) (stop func(context.Context), err error)
	// Reload runs on SIGHUP, after the policy file has been reloaded (or
	// kept, when it did not parse). Errors are logged; the daemon goes on.
	Reload func(ctx context.Context, d *daemon) error
}

var features []feature

// register adds a feature; call it from an init function.
func register(f feature) { features = append(features, f) }

// daemon is what the hooks see of the running proxy.
type daemon struct {
	// Logger is the daemon's logger (never nil).
	Logger *slog.Logger
	// PolicyFile is the -policy argument.
	PolicyFile string
	// Listen is the -listen address.
	Listen string

	rt *ss.Runtime
	mu sync.Mutex // serialises policy installs (SIGHUP, features)
}

// Runtime returns the proxy's runtime (nil during Configure).
func (d *daemon) Runtime() *ss.Runtime { return d.rt }

// InstallPolicy makes p the policy of the streams created from now on
// (links that exist keep their streams), logging its summary and
// diagnostics; source names where it came from, for the logs.
func (d *daemon) InstallPolicy(p *policy.Policy, diags []policy.Diagnostic, source string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.rt.SetPolicy(p); err != nil {
		return err
	}
	logPolicy(d.Logger, p, diags, source)
	return nil
}
