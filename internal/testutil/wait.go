package testutil

import (
	"context"
	"runtime"
	"strings"
	"time"
)

// WaitFor polls cond every few milliseconds until it is true or ctx is done.
func WaitFor(ctx context.Context, cond func() bool) bool {
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}

// GoroutinesIn counts the goroutines with a frame in a function whose name
// contains one of fns (e.g. "mqtt.(*session).await"): tests use it to wait,
// without timing, until code is parked where they expect.
func GoroutinesIn(fns ...string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, f := range fns {
			if strings.Contains(g, f) {
				count++
				break
			}
		}
	}
	return count
}
