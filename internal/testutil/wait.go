package testutil

import (
	"context"
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
