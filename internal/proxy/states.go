package proxy

import "github.com/securestreams/ss/internal/event"

// lwsNext[from] has bit n set when lws's own transition table (the rows
// marked lws in docs/streams.md §3.1, without this library's additions) allows
// from → n. lws clients abort or destroy the stream on anything else (W13),
// so the proxy never forwards such a transition (docs/wire.md §7.3).
var lwsNext = [...]uint32{
	0:                      sbits(event.Creating, event.Destroying),
	event.Creating:         sbits(event.Connecting, event.Timeout, event.Poll, event.ServerUpgrade, event.Destroying),
	event.Disconnected:     sbits(event.Connecting, event.Connected, event.Timeout, event.Poll, event.Destroying, event.Unreachable),
	event.Unreachable:      sbits(event.AllRetriesFailed, event.Timeout, event.Poll, event.Unreachable, event.Connecting, event.Connected, event.Destroying),
	event.AuthFailed:       sbits(event.AllRetriesFailed, event.Timeout, event.Connecting, event.Destroying),
	event.Connected:        sbits(event.ServerUpgrade, event.ServerTxn, event.AuthFailed, event.QoSAckRemote, event.QoSNackRemote, event.QoSAckLocal, event.QoSNackLocal, event.Disconnected, event.Timeout, event.Connecting, event.Poll, event.Destroying),
	event.Connecting:       sbits(event.Unreachable, event.AuthFailed, event.Connecting, event.Connected, event.QoSAckRemote, event.QoSNackRemote, event.Timeout, event.Poll, event.AllRetriesFailed, event.Disconnected, event.Destroying),
	event.Destroying:       0,
	event.Poll:             sbits(event.Connecting, event.Timeout, event.AllRetriesFailed, event.Destroying),
	event.AllRetriesFailed: sbits(event.Connecting, event.Poll, event.Timeout, event.Unreachable, event.Destroying),
	event.QoSAckRemote:     sbits(event.Disconnected, event.Timeout, event.Connecting, event.QoSAckRemote, event.QoSNackRemote, event.Destroying),
	event.QoSNackRemote:    sbits(event.Disconnected, event.Timeout, event.QoSAckRemote, event.QoSNackRemote, event.Destroying),
	event.QoSAckLocal:      sbits(event.Disconnected, event.Timeout, event.Destroying),
	event.QoSNackLocal:     sbits(event.Destroying, event.Timeout),
	event.Timeout:          sbits(event.Connecting, event.Connected, event.QoSAckRemote, event.QoSNackRemote, event.Poll, event.Timeout, event.Disconnected, event.Unreachable, event.Destroying),
	event.ServerTxn:        sbits(event.Disconnected, event.Timeout, event.ServerTxn, event.Destroying),
	event.ServerUpgrade:    sbits(event.ServerUpgrade, event.ServerTxn, event.Timeout, event.Disconnected, event.Destroying),
}

func sbits(states ...event.State) uint32 {
	var b uint32
	for _, s := range states {
		b |= 1 << s
	}
	return b
}

// LWSLegal reports whether lws clients accept the transition from → to
// (from 0 is "none", before CREATING). User states (≥ 1000) are always
// accepted and do not change the current state; states 17..20 are never
// forwarded and reported illegal here.
func LWSLegal(from, to event.State) bool {
	if to >= event.UserBase {
		return true
	}
	if int(from) >= len(lwsNext) || int(to) >= len(lwsNext) {
		return false
	}
	return lwsNext[from]&(1<<to) != 0
}

// stateForwarder applies docs/wire.md §7.3 to the onward stream's states: it
// converts the QoS LOCAL states, expands DISCONNECTED → ALL_RETRIES_FAILED,
// drops what is never sent, and withholds transitions lws clients would
// reject, tracking the state last sent.
type stateForwarder struct {
	last    event.State // last state sent (0: none yet)
	illegal uint64      // withheld transitions

	// early: the onward stream is an HTTP request with a body
	// (POST/PUT/PATCH): CONNECTED is sent as soon as the attempt starts, so
	// that clients (which send TX_PAYLOAD only after CONNECTED, W10) supply
	// the body (docs/wire.md §6.3).
	early     bool
	earlySent bool // CONNECTED sent early, the onward one not seen yet
}

// forward appends to dst the states to send for onward state st.
// withheld is true when st was dropped as an illegal transition.
func (f *stateForwarder) forward(dst []event.State, st event.State) (out []event.State, withheld bool) {
	switch st {
	case event.EventWaitCancelled, event.UpstreamLinkRetry, event.SinkJoin, event.SinkPart, event.Destroying:
		return dst, false
	case event.QoSAckLocal:
		st = event.QoSAckRemote
	case event.QoSNackLocal:
		st = event.QoSNackRemote
	}
	if st >= event.UserBase {
		return append(dst, st), false
	}
	if st == event.Creating && f.last != 0 {
		return dst, false // sent once
	}
	if f.early {
		switch {
		case st == event.Connected && f.earlySent:
			f.earlySent = false
			return dst, false // already sent
		case st == event.Unreachable && f.earlySent:
			st = event.Disconnected // a failure after the early CONNECTED
		}
		if st == event.Disconnected || st == event.Unreachable || st == event.AllRetriesFailed {
			f.earlySent = false
		}
	}
	if f.last == event.Disconnected && st == event.AllRetriesFailed {
		f.last = event.AllRetriesFailed
		return append(dst, event.Poll, event.AllRetriesFailed), false
	}
	if !LWSLegal(f.last, st) {
		f.illegal++
		return dst, true
	}
	f.last = st
	dst = append(dst, st)
	if f.early && st == event.Connecting && !f.earlySent {
		f.earlySent = true
		f.last = event.Connected
		dst = append(dst, event.Connected)
	}
	return dst, false
}
