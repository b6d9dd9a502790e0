package proxy

import (
	"testing"
	"time"
)

// TestTakePeakLinks: the most links open at once since the last call, even
// when they are all closed by then; the next period starts from the links
// open at the call.
func TestTakePeakLinks(t *testing.T) {
	f := newFakeOnward(map[string]OnwardInfo{"x": {}})
	srv, name := startServer(t, f, nil)
	var rs []*rawClient
	for range 3 {
		r := dialRaw(t, name)
		r.create("x")
		rs = append(rs, r)
	}
	keep := rs[0]
	for _, r := range rs[1:] {
		r.c.Close()
	}
	for start := time.Now(); srv.Links() != 1; time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%d links open, want 1", srv.Links())
		}
	}
	if p := srv.TakePeakLinks(); p != 3 {
		t.Fatalf("peak %d, want 3", p)
	}
	if p := srv.TakePeakLinks(); p != 1 {
		t.Fatalf("peak after the call %d, want the 1 still open", p)
	}
	keep.c.Close()
}
