package stream

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// mdClearer is the sink's ClearMetadata (httpserver.MetadataClearer).
type mdClearer interface{ ClearMetadata(name string) }

// TestMetadataWriters: a declared item has one writer per half (mdSlot).
// Metadata returns the later write, the application's or the peer's; a
// received value the transport forgets gives the application's value back;
// the next attempt carries only what the application set, even when the
// peer wrote last (docs/stream-states.md, docs/streams.md §9.4). With one
// slot for both writers the forgotten value left the item unset and the
// peer's value went out with the next attempt.
func TestMetadataWriters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		step := make(chan func(transport.Sink))
		stepOpen := true
		defer func() {
			if stepOpen { // a failed check: let the attempt end
				close(step)
			}
		}()
		var seen [][]transport.MetadataValue
		p := &fakeProto{run: func(n int, _ context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
			seen = append(seen, a.Metadata)
			if n == 1 {
				for f := range step {
					f(sink)
				}
			}
			return transport.Result{Err: errors.New("refused")}
		}}
		typ := st("md", rtry(1, 0, 100))
		typ.Metadata = []*policy.MetadataItem{{Name: "tag", Header: "x-tag"}, {Name: "srv"}}
		s, r := e.create(typ, p)
		if err := s.SetMetadata("tag", "app1"); err != nil {
			t.Fatal(err)
		}
		s.RequestTx()
		synctest.Wait()
		peer := func(f func(transport.Sink)) { step <- f; synctest.Wait() }
		want := func(name, v string, set bool) {
			t.Helper()
			if got, ok, err := s.Metadata(name); err != nil || got != v || ok != set {
				t.Fatalf("Metadata(%q) = %q %v %v, want %q %v", name, got, ok, err, v, set)
			}
		}

		peer(func(k transport.Sink) { k.SetMetadata("tag", "peer1"); k.SetMetadata("srv", "s1") })
		want("tag", "peer1", true) // received after the application's value
		want("srv", "s1", true)
		if err := s.SetMetadata("tag", "app2"); err != nil {
			t.Fatal(err)
		}
		want("tag", "app2", true) // the application wrote last
		peer(func(k transport.Sink) { k.SetMetadata("tag", "peer2") })
		want("tag", "peer2", true)
		peer(func(k transport.Sink) { k.(mdClearer).ClearMetadata("tag"); k.(mdClearer).ClearMetadata("srv") })
		want("tag", "app2", true) // the application's value again
		want("srv", "", false)    // never set by the application
		peer(func(k transport.Sink) { k.SetMetadata("tag", "peer3") })
		want("tag", "peer3", true)
		close(step)
		stepOpen = false
		settle(time.Second) // the retry

		if len(seen) != 2 {
			t.Fatalf("%d attempts", len(seen))
		}
		if v := seen[0][0]; v.Value != "app1" || !v.Set {
			t.Fatalf("tag on the 1st attempt: %+v", v)
		}
		if v := seen[1][0]; v.Value != "app2" || !v.Set {
			t.Fatalf("tag on the 2nd attempt: %+v, want the application's app2 (the peer wrote peer3 last)", v)
		}
		if v := seen[1][1]; v.Set {
			t.Fatalf("srv on the 2nd attempt: %+v, want unset (only ever received)", v)
		}
		want("tag", "peer3", true) // a new attempt does not forget what was received
		destroy(t, s, r)
	})
}

// TestMetadataConcurrentWriters: the application setting an item while the
// transport stores received values into the same item, from two
// goroutines (run with -race). Afterwards the next attempt carries the
// application's last value.
func TestMetadataConcurrentWriters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		var seen [][]transport.MetadataValue
		var wg sync.WaitGroup
		wg.Add(1)
		p := &fakeProto{run: func(n int, _ context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
			seen = append(seen, a.Metadata)
			if n == 1 {
				defer wg.Done()
				for range 200 {
					sink.SetMetadata("tag", "peer")
				}
			}
			return transport.Result{Err: errors.New("refused")}
		}}
		typ := st("md", rtry(1, 0, 100))
		typ.Metadata = []*policy.MetadataItem{{Name: "tag", Header: "x-tag"}}
		s, r := e.create(typ, p)
		s.RequestTx()
		for range 200 {
			if err := s.SetMetadata("tag", "app"); err != nil {
				t.Fatal(err)
			}
			if v, ok, _ := s.Metadata("tag"); !ok || (v != "app" && v != "peer") {
				t.Fatalf("Metadata = %q %v", v, ok)
			}
		}
		wg.Wait()
		settle(time.Second)
		if len(seen) != 2 {
			t.Fatalf("%d attempts", len(seen))
		}
		if v := seen[1][0]; v.Value != "app" || !v.Set {
			t.Fatalf("tag on the 2nd attempt: %+v, want the application's value", v)
		}
		destroy(t, s, r)
	})
}
