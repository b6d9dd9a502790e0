package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/securestreams/ss/internal/proxy"
)

func init() { register(memoryFeature) }

// DefaultReleaseIdle is how often ssproxy checks whether its load dropped
// (-release-idle). A check is one atomic load; a release (a garbage
// collection and the return of the free pages) happens only after a drop.
const DefaultReleaseIdle = time.Second

// DefaultGOGC is ssproxy's garbage collector target (-gogc): the heap may
// grow by this percentage of the live heap between collections. Go's
// default, 100, lets an idle proxy hold about twice its live heap; 50
// holds 1.5 times (PERFORMANCE.md, "Memory per proxied stream", has the
// resident set and the CPU cost measured with each).
const DefaultGOGC = 50

// minReleaseDrop is the fewest links that must have gone since the peak
// for a release: a few links free too little to be worth a collection.
const minReleaseDrop = 32

// memoryFeature returns memory to the operating system when the load drops
// (docs/proxy.md, "Memory"): every -release-idle, if the open links have
// fallen to half or less of the most seen since the last release (and by
// minReleaseDrop at least), the
// memory the Go runtime holds for the links that went away (heap spans,
// goroutine stacks) is returned at once (debug.FreeOSMemory) instead of
// by the background scavenger over minutes. -memory-limit sets the
// runtime's soft memory limit (debug.SetMemoryLimit), under which the
// collector runs more often rather than let the heap grow.
func memoryFeature(fs *flag.FlagSet) hooks {
	every := fs.Duration("release-idle", DefaultReleaseIdle,
		"every `interval`, return memory to the OS if the open links fell to half the most seen since the last release, by 32 at least (0: never; the Go scavenger still returns it, over minutes)")
	limit := fs.Int64("memory-limit", 0,
		"soft memory limit of the Go runtime in `bytes` (0: GOMEMLIMIT if set, else none)")
	gogc := fs.Int("gogc", DefaultGOGC,
		"garbage collector target `percent`: the heap grows by this much of the live heap between collections (GOGC in the environment wins when this flag is not given)")
	var srv *proxy.Server
	return hooks{
		Check: func() error {
			if *every < 0 {
				return fmt.Errorf("-release-idle %v: must be 0 or positive", *every)
			}
			if *limit < 0 {
				return fmt.Errorf("-memory-limit %d: must be 0 or positive", *limit)
			}
			if *gogc <= 0 {
				return fmt.Errorf("-gogc %d: must be positive", *gogc)
			}
			return nil
		},
		Server: func(_ *daemon, s *proxy.Server) error { srv = s; return nil },
		Start: func(ctx context.Context, d *daemon) (func(context.Context), error) {
			if *limit > 0 {
				debug.SetMemoryLimit(*limit)
			}
			given := false
			fs.Visit(func(f *flag.Flag) { given = given || f.Name == "gogc" })
			if given || os.Getenv("GOGC") == "" {
				debug.SetGCPercent(*gogc)
			}
			pct := debug.SetGCPercent(-1)
			debug.SetGCPercent(pct)
			d.Logger.Debug("ssproxy: garbage collector target", "gogc", pct)
			if *every == 0 {
				return nil, nil
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				r := releaser{links: srv.Links, peakSince: srv.TakePeakLinks}
				t := time.NewTicker(*every)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
						if peak, now, ok := r.check(); ok {
							before := heapHeld()
							debug.FreeOSMemory()
							d.Logger.Debug("ssproxy: memory returned to the OS", "links_peak", peak, "links", now,
								"held_before", before, "held_after", heapHeld())
						}
					}
				}
			}()
			return func(context.Context) { <-done }, nil
		},
	}
}

// releaser decides when the load dropped: the links fell to half or less
// of the most open at once since the last release (peakSince reports the
// peak between two checks, so that a burst between ticks counts), and by
// minReleaseDrop at least.
type releaser struct {
	links     func() int
	peakSince func() int
	peak      int
}

func (r *releaser) check() (peak, now int, release bool) {
	now = r.links()
	r.peak = max(r.peak, now, r.peakSince())
	if r.peak == 0 || now > r.peak/2 || r.peak-now < minReleaseDrop {
		return r.peak, now, false
	}
	peak, r.peak = r.peak, now
	return peak, now, true
}

// heapHeld is the memory the Go runtime holds from the OS for heap and
// stacks, less what it has already returned.
func heapHeld() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapSys - ms.HeapReleased + ms.StackSys
}
