package stream

import "github.com/securestreams/ss/internal/event"

// legalNext[from] has bit n set when the transition from → n is allowed
// (docs/streams.md §3.1). Index 0 is "none", the state before CREATING.
var legalNext = [...]uint32{
	0:                        bits(event.Creating, event.Destroying),
	event.Creating:           bits(event.Connecting, event.Timeout, event.Poll, event.ServerUpgrade, event.Destroying),
	event.Disconnected:       bits(event.Connecting, event.Connected, event.Timeout, event.Poll, event.Destroying, event.Unreachable, event.AllRetriesFailed),
	event.Unreachable:        bits(event.AllRetriesFailed, event.Timeout, event.Poll, event.Unreachable, event.Connecting, event.Connected, event.Destroying),
	event.AuthFailed:         bits(event.AllRetriesFailed, event.Timeout, event.Connecting, event.Destroying),
	event.Connected:          bits(event.ServerUpgrade, event.ServerTxn, event.AuthFailed, event.QoSAckRemote, event.QoSNackRemote, event.QoSAckLocal, event.QoSNackLocal, event.Disconnected, event.Timeout, event.Connecting, event.Poll, event.Destroying),
	event.Connecting:         bits(event.Unreachable, event.AuthFailed, event.Connecting, event.Connected, event.QoSAckRemote, event.QoSNackRemote, event.Timeout, event.Poll, event.AllRetriesFailed, event.Disconnected, event.Destroying),
	event.Destroying:         0,
	event.Poll:               bits(event.Connecting, event.Timeout, event.AllRetriesFailed, event.Destroying),
	event.AllRetriesFailed:   bits(event.Connecting, event.Poll, event.Timeout, event.Unreachable, event.Destroying),
	event.QoSAckRemote:       bits(event.Disconnected, event.Timeout, event.Connecting, event.QoSAckRemote, event.QoSNackRemote, event.Destroying, event.QoSNackLocal),
	event.QoSNackRemote:      bits(event.Disconnected, event.Timeout, event.QoSAckRemote, event.QoSNackRemote, event.Destroying, event.QoSNackLocal),
	event.QoSAckLocal:        bits(event.Disconnected, event.Timeout, event.Destroying, event.QoSAckLocal, event.QoSNackLocal, event.QoSAckRemote, event.QoSNackRemote),
	event.QoSNackLocal:       bits(event.Destroying, event.Timeout, event.QoSAckLocal, event.QoSNackLocal, event.QoSAckRemote, event.QoSNackRemote, event.Disconnected),
	event.Timeout:            bits(event.Connecting, event.Connected, event.QoSAckRemote, event.QoSNackRemote, event.Poll, event.Timeout, event.Disconnected, event.Unreachable, event.Destroying, event.QoSAckLocal, event.QoSNackLocal, event.ServerTxn, event.ServerUpgrade),
	event.ServerTxn:          bits(event.Disconnected, event.Timeout, event.ServerTxn, event.Destroying),
	event.ServerUpgrade:      bits(event.ServerUpgrade, event.ServerTxn, event.Timeout, event.Disconnected, event.Destroying),
	event.EventWaitCancelled: 0,
	event.UpstreamLinkRetry:  0,
	event.SinkJoin:           0,
	event.SinkPart:           0,
}

func bits(states ...event.State) uint32 {
	var b uint32
	for _, s := range states {
		b |= 1 << s
	}
	return b
}

// Checked reports whether s is subject to the transition table and changes
// the current state. User states (≥ 1000), EVENT_WAIT_CANCELLED,
// UPSTREAM_LINK_RETRY, SINK_JOIN and SINK_PART are not (docs/streams.md §3.2).
func Checked(s event.State) bool {
	switch {
	case s >= event.UserBase:
		return false
	case s == event.EventWaitCancelled, s == event.UpstreamLinkRetry, s == event.SinkJoin, s == event.SinkPart:
		return false
	}
	return true
}

// Legal reports whether a checked state to may follow from (0 = none, the
// state before CREATING) according to docs/streams.md §3.1. Unchecked states are
// always legal.
func Legal(from, to event.State) bool {
	if !Checked(to) {
		return true
	}
	if int(from) >= len(legalNext) || to > 31 {
		return false
	}
	return legalNext[from]&(1<<to) != 0
}
