package main

import (
	"errors"
	"flag"
	"fmt"
	"os/user"
	"strconv"
	"strings"

	"github.com/securestreams/ss/internal/proxy"
)

func init() { register(limitsFeature) }

// idList is a repeatable, comma-separated list of numeric ids or names.
type idList struct {
	ids    []uint32
	lookup func(string) (string, error) // name → numeric id
}

func (l *idList) String() string {
	var s []string
	for _, id := range l.ids {
		s = append(s, strconv.FormatUint(uint64(id), 10))
	}
	return strings.Join(s, ",")
}

func (l *idList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			id, lerr := l.lookup(f)
			if lerr != nil {
				return fmt.Errorf("%q is neither a number nor a known name: %v", f, lerr)
			}
			n, err = strconv.ParseUint(id, 10, 32)
			if err != nil {
				return fmt.Errorf("%q: id %q: %v", f, id, err)
			}
		}
		l.ids = append(l.ids, uint32(n))
	}
	return nil
}

func lookupUID(name string) (string, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return "", err
	}
	return u.Uid, nil
}

func lookupGID(name string) (string, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return "", err
	}
	return g.Gid, nil
}

// limitsFeature: the proxy's resource limits and allow-list
// (proxy.ServerLimits; docs/proxy.md lists them with their defaults).
func limitsFeature(fs *flag.FlagSet) hooks {
	var lim proxy.ServerLimits
	setup := fs.Duration("setup-timeout", proxy.DefaultStreamTypeTimeout, "time a new connection has to send its STREAMTYPE")
	fs.IntVar(&lim.MaxLinks, "max-links", proxy.DefaultMaxLinks, "open links in total, connections still setting up included (-1: no limit)")
	fs.IntVar(&lim.MaxLinksPerUID, "max-links-per-uid", proxy.DefaultMaxLinksPerUID, "open links per peer user id (TCP: per remote address) (-1: no limit)")
	fs.IntVar(&lim.MaxLinksPerProcess, "max-links-per-process", proxy.DefaultMaxLinksPerProcess, "open links per peer process id (-1: no limit)")
	fs.IntVar(&lim.MaxMetadata, "max-metadata", proxy.DefaultMaxMetadata, "distinct metadata names a client may set on one stream (-1: no limit)")
	fs.IntVar(&lim.MaxMetadataBytes, "max-metadata-bytes", proxy.DefaultMaxMetadataBytes, "bytes of metadata names and values one stream may hold (-1: no limit)")
	fs.Float64Var(&lim.ControlRate, "control-rate", proxy.DefaultControlRate, "control operations per second per link reaching its stream; more are coalesced (-1: no limit)")
	fs.IntVar(&lim.ControlBurst, "control-burst", proxy.DefaultControlBurst, "burst allowed above -control-rate")
	fs.Int64Var(&lim.MaxQueuedBytes, "max-queued-bytes", proxy.DefaultMaxQueuedBytes, "bytes all links together may queue (each link counts its streamtype's proxy_buflen + rxflow_on_above) (-1: no limit)")
	fs.DurationVar(&lim.FrameTimeout, "frame-timeout", proxy.DefaultFrameTimeout, "time a frame may take to arrive once begun (slow senders are closed) (-1s: no limit)")
	uids := &idList{lookup: lookupUID}
	gids := &idList{lookup: lookupGID}
	fs.Var(uids, "allow-uid", "only peers with these user ids or names may connect (comma-separated, repeatable; unix sockets only)")
	fs.Var(gids, "allow-gid", "only peers with these group ids or names may connect (comma-separated, repeatable; unix sockets only)")
	return hooks{
		Check: func() error {
			if *setup <= 0 {
				return fmt.Errorf("-setup-timeout %v: must be positive", *setup)
			}
			if lim.MaxLinks == 0 || lim.MaxLinksPerUID == 0 || lim.MaxLinksPerProcess == 0 || lim.MaxMetadata == 0 ||
				lim.MaxMetadataBytes == 0 || lim.ControlRate == 0 || lim.MaxQueuedBytes == 0 || lim.FrameTimeout == 0 {
				return errors.New("a limit of 0 would refuse everything: give a positive value, or -1 for no limit")
			}
			if lim.ControlBurst < 1 {
				return fmt.Errorf("-control-burst %d: must be at least 1", lim.ControlBurst)
			}
			return lim.Check()
		},
		Server: func(d *daemon, srv *proxy.Server) error {
			lim.AllowUIDs, lim.AllowGIDs = uids.ids, gids.ids
			network, _, _ := proxy.ParseAddress(d.Listen)
			if len(lim.AllowUIDs)+len(lim.AllowGIDs) > 0 && network != "unix" {
				return fmt.Errorf("-allow-uid/-allow-gid need a unix socket: TCP peers have no credentials (-listen %s)", d.Listen)
			}
			srv.Limits = lim
			srv.StreamTypeTimeout = *setup
			allow := "any local user"
			if network != "unix" {
				allow = "any peer that can reach " + d.Listen
			}
			if len(lim.AllowUIDs)+len(lim.AllowGIDs) > 0 {
				allow = "uids [" + uids.String() + "] gids [" + gids.String() + "]"
			}
			d.Logger.Info("ssproxy: limits", "allow", allow, "max_links", lim.MaxLinks, "per_uid", lim.MaxLinksPerUID,
				"per_process", lim.MaxLinksPerProcess, "metadata", lim.MaxMetadata, "metadata_bytes", lim.MaxMetadataBytes,
				"control_rate", lim.ControlRate, "control_burst", lim.ControlBurst, "queued_bytes", lim.MaxQueuedBytes,
				"frame_timeout", lim.FrameTimeout.String(), "setup_timeout", setup.String())
			return nil
		},
	}
}
