package test

import (
	"context"
	"testing"

	ss "github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
)

// TestStreamsCountAfterClose: once a stream's event channel has closed
// (DESTROYING delivered) Stats no longer counts it, even if its actor has
// not stopped yet; examples/stress checks this right after its streams end.
func TestStreamsCountAfterClose(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("echo", "127.0.0.1", srv.Port()))})
	ctx := context.Background()
	for i := range 200 {
		s, err := rt.Create(ctx, "echo")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		for range s.Events() {
		}
		if st := rt.Stats(); st.Streams != 0 {
			t.Fatalf("round %d: %+v after the event channel closed", i, st)
		}
	}
}
