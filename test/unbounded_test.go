package test

import (
	"context"
	"net"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/securestreams/ss"
)

// TestUnreadRetryingStreamHeapFlat: a stream the application never reads,
// retrying a refused endpoint every millisecond (backoff [1]), keeps the
// heap flat for 30 s: once its queue holds ss.StateBound states it starts
// no new attempt until the application reads (docs/stream-states.md).
// Reading then shows every state, in order. 30 s of wall time, skipped
// under -short.
func TestUnreadRetryingStreamHeapFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s heap watch; skipped under -short")
	}
	path := filepath.Join(t.TempDir(), "refusing.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	st := rawType("unread", "+"+path, 0)
	st.Retry = retry(65535, 0, 1)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
	ctx := context.Background()
	s, err := rt.Create(ctx, "unread")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestTx(); err != nil {
		t.Fatal(err)
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	time.Sleep(time.Second)
	base, peak := heap(), uint64(0)
	attempts := s.Stats().Attempts
	for i := 0; i < 29; i++ {
		time.Sleep(time.Second)
		peak = max(peak, heap())
	}
	const slack = 2 << 20
	if peak > base+slack {
		t.Fatalf("heap grew from %d to %d bytes in 30 s (allowed %d)", base, peak, slack)
	}
	if a := s.Stats().Attempts; a != attempts || a > ss.StateBound {
		t.Fatalf("attempts went from %d to %d while unread, want it stopped below %d", attempts, a, ss.StateBound)
	}
	// Every state is there: CREATING, then POLL, CONNECTING, UNREACHABLE
	// per attempt.
	r := record(t, s)
	for i := 0; i < int(attempts); i++ {
		r.untilState(wait, ss.Unreachable)
	}
	want := []string{"CREATING"}
	for i := 0; i < int(attempts); i++ {
		want = append(want, "POLL", "CONNECTING", "UNREACHABLE")
	}
	r.expect(want...)
	// Reading lets it go on.
	r.untilState(wait, ss.Unreachable)
	if err := s.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	r.closed(wait)
}
