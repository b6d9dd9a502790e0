package stream

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/policy"
)

// fakeDriver is a RemoteDriver that only keeps its Remote: the test plays
// the proxy link.
type fakeDriver struct{ r *Remote }

func (d *fakeDriver) Start(r *Remote)            { d.r = r }
func (d *fakeDriver) Tx()                        {}
func (d *fakeDriver) Connect()                   {}
func (d *fakeDriver) Disconnect()                {}
func (d *fakeDriver) StartTimeout(time.Duration) {}
func (d *fakeDriver) CancelTimeout()             {}
func (d *fakeDriver) Close()                     {}
func (e *env) remote(typ *policy.Streamtype) (*Stream, *Remote, *rec) {
	e.t.Helper()
	d := &fakeDriver{}
	s, err := NewRemote(e.h, Config{Policy: &policy.Policy{Streamtypes: []*policy.Streamtype{typ}}, Type: typ}, d)
	if err != nil {
		e.t.Fatal(err)
	}
	return s, d.r, e.record(s)
}

// TestRemoteReportsDecided: a proxied stream's driver reports states; the
// stream's actor decides them in order (docs/stream-states.md). A link that
// ends gives DISCONNECTED only for a connection (or, asked, an attempt) the
// reports before it established, however soon after them it is reported;
// the cause becomes Stats.LastError; Destroy decides what was reported
// before it.
func TestRemoteReportsDecided(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		s, r, rc := e.remote(st("rem", nil))
		lost := errors.New("link lost")

		r.LinkEnded(false, lost) // nothing was connected
		r.LinkEnded(true, nil)   // nor under way
		synctest.Wait()
		// One burst, decided after it was all reported: LinkEnded sees the
		// CONNECTED reported just before it.
		r.State(event.Connecting, 0, nil)
		r.State(event.Connected, 0, nil)
		if err := r.Rx(t.Context(), []byte("hi"), event.SOM|event.EOM); err != nil {
			t.Fatal(err)
		}
		r.LinkEnded(false, lost)
		r.LinkEnded(false, lost) // already ended
		synctest.Wait()
		if err := s.Stats().LastError; !errors.Is(err, lost) {
			t.Fatalf("LastError %v, want the link's cause", err)
		}
		r.State(event.Connecting, 0, nil)
		r.LinkEnded(true, nil) // Disconnect while connecting
		r.LinkEnded(true, nil) // idle now
		r.State(event.Connecting, 0, nil)
		r.State(event.Connected, 0, nil)
		if err := s.Destroy(t.Context()); err != nil {
			t.Fatal(err)
		}
		<-rc.end
		rc.expect(t, "CREATING", "CONNECTING", "CONNECTED", `rx(SOM|EOM,"hi")`, "DISCONNECTED",
			"CONNECTING", "DISCONNECTED", "CONNECTING", "CONNECTED", "DISCONNECTED", "DESTROYING")
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if err := rc.evs[4].Err; !errors.Is(err, lost) {
			t.Fatalf("DISCONNECTED Err %v, want the link's cause", err)
		}
		if err := rc.evs[6].Err; err != nil {
			t.Fatalf("asked DISCONNECTED Err %v, want none", err)
		}
	})
}

// TestRemoteWaitRoomCountsReports: reports the actor has not decided yet
// count against StateBound, so a driver cannot run ahead of the actor.
func TestRemoteWaitRoomCountsReports(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		d := &fakeDriver{}
		typ := st("rem", nil)
		s, err := NewRemote(e.h, Config{Policy: &policy.Policy{Streamtypes: []*policy.Streamtype{typ}}, Type: typ}, d)
		if err != nil {
			t.Fatal(err)
		}
		r := d.r
		synctest.Wait() // the actor has started
		// Nobody reads and the actor is not told: the reports stay undecided.
		s.mu.Lock()
		for range StateBound {
			s.reportLocked(report{}, event.UpstreamLinkRetry, 0, nil)
		}
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := r.WaitRoom(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitRoom = %v with %d undecided reports, want it to wait", err, StateBound)
		}
		if err := s.Destroy(t.Context()); err != nil {
			t.Fatal(err)
		}
		n := 0
		for ev := range s.Events() {
			if ev.State == event.UpstreamLinkRetry {
				n++
			}
		}
		if n != StateBound {
			t.Fatalf("%d UPSTREAM_LINK_RETRY delivered, want %d", n, StateBound)
		}
	})
}
