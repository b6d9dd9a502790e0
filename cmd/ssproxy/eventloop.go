package main

import (
	"flag"
	"fmt"

	"github.com/securestreams/ss/internal/proxy"
)

func init() { register(eventLoopFeature) }

// eventLoopFeature selects how links are read (docs/proxy.md, "Event
// loop"): -event-loop on (the default on Linux) parks idle links in one
// epoll set read inline by -pollers goroutines; off reads each link with a
// goroutine of its own.
func eventLoopFeature(fs *flag.FlagSet) hooks {
	mode := fs.String("event-loop", "on", "read links with the event loop (`on`, Linux only) or one goroutine per link (off)")
	pollers := fs.Int("pollers", 1, "event-loop goroutines, each with an epoll set of its own (with -event-loop on)")
	busyPoll := fs.Duration("busy-poll", 0, "after finding events, keep polling for this long before sleeping (with -event-loop on; 0: off). Needs a spare core: see docs/proxy.md")
	return hooks{
		Check: func() error {
			if *mode != "on" && *mode != "off" {
				return fmt.Errorf("-event-loop %q: want on or off", *mode)
			}
			if *pollers < 1 {
				return fmt.Errorf("-pollers %d: must be at least 1", *pollers)
			}
			if *busyPoll < 0 {
				return fmt.Errorf("-busy-poll %v: must not be negative", *busyPoll)
			}
			return nil
		},
		Server: func(_ *daemon, srv *proxy.Server) error {
			srv.Loop, srv.Pollers, srv.BusyPoll = proxy.LoopOn, *pollers, *busyPoll
			if *mode == "off" {
				srv.Loop = proxy.LoopOff
			}
			return nil
		},
	}
}
