// Package sstest holds test helpers that need the root ss package. It is
// separate from internal/testutil because the lower packages' tests import
// testutil and must not import ss. Only test/ packages use it.
package sstest

import (
	"context"
	"testing"
	"time"

	"github.com/securestreams/ss"
)

// NewRuntime creates a runtime that is closed at cleanup, checking that
// Close succeeds within 10 s and that no illegal state transition happened.
func NewRuntime(t testing.TB, cfg ss.Config) *ss.Runtime {
	t.Helper()
	rt, err := ss.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		if n := rt.Stats().IllegalTransitions; n != 0 {
			t.Errorf("IllegalTransitions = %d, want 0", n)
		}
	})
	return rt
}
