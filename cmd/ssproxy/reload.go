package main

import (
	"context"

	"github.com/securestreams/ss/policy"
)

// reload handles SIGHUP: it parses the policy file again and installs it
// for the streams created from now on; links that exist keep their
// streams. A file that cannot be read or parsed leaves the current policy
// in place, and the log says why.
func (d *daemon) reload(ctx context.Context, hs []hooks) {
	d.Logger.Info("ssproxy: SIGHUP: reloading the policy", "file", d.PolicyFile)
	p, diags, err := policy.ParseFile(d.PolicyFile, policy.Options{})
	if err != nil {
		d.Logger.Error("ssproxy: policy reload failed, keeping the current policy", "file", d.PolicyFile, "err", err)
		for _, dg := range diags {
			d.Logger.Error("ssproxy: policy: "+dg.String(), "source", d.PolicyFile)
		}
	} else if err := d.InstallPolicy(p, diags, d.PolicyFile); err != nil {
		d.Logger.Error("ssproxy: policy reload failed, keeping the current policy", "file", d.PolicyFile, "err", err)
	}
	for _, h := range hs {
		if h.Reload != nil {
			if err := h.Reload(ctx, d); err != nil {
				d.Logger.Error("ssproxy: reload", "err", err)
			}
		}
	}
}
