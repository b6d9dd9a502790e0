package ws

import (
	"time"

	"github.com/securestreams/ss/internal/transport"
)

// validity is the docs/streams.md §7 timer of one connection: with ping < hup it
// first waits ping (then a PING is due) and then hup − ping (then the
// connection is dead); otherwise it waits hup once. A confirmation starts
// it again from the beginning. A zero hup disables it (C never fires).
type validity struct {
	ping, hup time.Duration
	t         *time.Timer
	pinged    bool // the PING phase is over
}

func newValidity(a *transport.Attempt) *validity {
	v := &validity{}
	if a.Type == nil || a.Type.Retry == nil || a.Type.Retry.SValidHup == 0 {
		return v
	}
	r := a.Type.Retry
	v.hup = time.Duration(r.SValidHup) * validitySecond
	v.ping = time.Duration(r.SValidPing) * validitySecond
	if v.ping >= v.hup {
		v.ping = 0
	}
	v.t = time.NewTimer(v.first())
	return v
}

func (v *validity) first() time.Duration {
	v.pinged = v.ping == 0
	if v.ping == 0 {
		return v.hup
	}
	return v.ping
}

// C is the timer channel (nil when disabled).
func (v *validity) C() <-chan time.Time {
	if v.t == nil {
		return nil
	}
	return v.t.C
}

// expired is called when C fired: true means the connection is dead; false
// means a PING is due, and the second phase has been armed.
func (v *validity) expired() bool {
	if v.pinged {
		return true
	}
	v.pinged = true
	v.t.Reset(v.hup - v.ping)
	return false
}

// confirm restarts the timer after a validity confirmation.
func (v *validity) confirm() {
	if v.t != nil {
		v.t.Reset(v.first())
	}
}

func (v *validity) stop() {
	if v.t != nil {
		v.t.Stop()
	}
}
