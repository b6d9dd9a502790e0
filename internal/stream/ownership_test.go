package stream

import (
	"context"
	"testing"

	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// TestEndUnstartedCountsBeforeDestroying: a NewProps stream whose Props were
// never spawned is ended by Host.Close; by the time its reader holds
// DESTROYING the host no longer counts it (as for a started stream). Before
// the fix endUnstarted queued DESTROYING first and removed the stream
// afterwards, so a reader already waiting on the channel (the direct
// hand-over) could see Streams() == 1.
func TestEndUnstartedCountsBeforeDestroying(t *testing.T) {
	typ := st("p", nil)
	pol := &policy.Policy{Streamtypes: []*policy.Streamtype{typ}}
	for round := range 100 {
		sys := actor.NewSystem(nil)
		h := NewHost(sys, transport.Env{}.Defaults())
		s, _, err := NewProps(h, Config{Policy: pol, Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan int, 1)
		created := make(chan struct{})
		go func() {
			n := -1
			for ev := range s.Events() {
				switch ev.State {
				case event.Creating:
					close(created) // then wait on the channel
				case event.Destroying:
					n = h.Streams()
				}
			}
			got <- n
		}()
		<-created
		if err := h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		n := <-got
		if err := sys.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("round %d: Streams() = %d when DESTROYING arrived, want 0", round, n)
		}
	}
}
