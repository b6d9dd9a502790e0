package stream

import (
	"slices"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/policy"
)

// Traits is the per-protocol behaviour a stream needs to know about. The
// stream never looks at protocol names: each protocol registers its Traits
// next to its adapter (the root package's protocols.go) and the runtime
// hands them over through Host.Traits (docs/stream-states.md).
type Traits struct {
	// Transactional: each attempt carries one transaction (HTTP). The tx
	// queue keeps the chunks an attempt sent until the transaction
	// completes (a failed attempt sends the whole body again), and a bare
	// RequestTx made while connected asks for the next transaction instead
	// of being served by the connection.
	Transactional bool
	// TimeoutEndsWithConnection: a connection's end cancels the stream
	// timeout (raw, ws).
	TimeoutEndsWithConnection bool
	// EndTimeoutOn are the QOS_* states the transport reports that complete
	// the work the stream timeout guards (HTTP: the transaction; MQTT: the
	// publish): they cancel the timeout.
	EndTimeoutOn []event.State
	// ResetFailuresOn are the states that prove the peer: they reset the
	// consecutive-failure counter (docs/streams.md §6.3).
	ResetFailuresOn []event.State
}

func (t *Traits) endsTimeout(st event.State) bool    { return slices.Contains(t.EndTimeoutOn, st) }
func (t *Traits) resetsFailures(st event.State) bool { return slices.Contains(t.ResetFailuresOn, st) }

// noTraits are the Traits of a host without a table.
var noTraits Traits

// traitsFor returns the Traits of protocol p (zero Traits when the host has
// no table): one copy per protocol, shared by the host's streams.
func (h *Host) traitsFor(p policy.Protocol) *Traits {
	if h.Traits == nil {
		return &noTraits
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.traitTab[p]; t != nil {
		return t
	}
	if h.traitTab == nil {
		h.traitTab = map[policy.Protocol]*Traits{}
	}
	t := h.Traits(p)
	h.traitTab[p] = &t
	return &t
}
