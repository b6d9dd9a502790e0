package main

import (
	"context"
	"flag"

	"github.com/securestreams/ss"
)

func init() { register(network) }

// network is the captive portal feature (docs/captive-portal.md): with
// -check-network the proxy runs the policy's captive_portal_detect
// streamtype at startup and after each SIGHUP; with -hold-until-online its
// onward streams also wait for InternetOK before connecting. Each result is
// logged.
func network(fs *flag.FlagSet) hooks {
	check := fs.Bool("check-network", false, "run captive portal detection (the policy's captive_portal_detect streamtype) at startup and after each SIGHUP, logging the result")
	hold := fs.Bool("hold-until-online", false, "hold the onward streams' connection attempts until captive portal detection reports InternetOK (implies -check-network)")
	return hooks{
		Configure: func(d *daemon, cfg *ss.Config) error {
			cfg.CheckNetworkAtStart = *check || *hold
			cfg.HoldUntilOnline = *hold
			return nil
		},
		Start: func(ctx context.Context, d *daemon) (func(context.Context), error) {
			if !*check && !*hold {
				return nil, nil
			}
			states := d.Runtime().NetworkStates()
			ctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					select {
					case st, ok := <-states:
						if !ok {
							return
						}
						d.Logger.Info("ssproxy: network state", "state", st.String())
					case <-ctx.Done():
						return
					}
				}
			}()
			return func(context.Context) { cancel(); <-done }, nil
		},
		Reload: func(ctx context.Context, d *daemon) error {
			if *check || *hold {
				d.Runtime().NetworkChanged()
			}
			return nil
		},
	}
}
