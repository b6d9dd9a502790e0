package ss

import (
	"github.com/securestreams/ss/event"
	"github.com/securestreams/ss/stream"
)

// State is an advisory stream state; the values are libwebsockets'.
type State = event.State

// Flags are payload flags; the values are libwebsockets'.
type Flags = event.Flags

// Kind says whether an Event carries a state or payload.
type Kind = event.Kind

// Event is one entry of a stream's event channel.
type Event = event.Event

// Event kinds.
const (
	StateEvent   = event.StateEvent
	PayloadEvent = event.PayloadEvent
)

// States (streams.md §2).
const (
	Creating           = event.Creating
	Disconnected       = event.Disconnected
	Unreachable        = event.Unreachable
	AuthFailed         = event.AuthFailed
	Connected          = event.Connected
	Connecting         = event.Connecting
	Destroying         = event.Destroying
	Poll               = event.Poll
	AllRetriesFailed   = event.AllRetriesFailed
	QoSAckRemote       = event.QoSAckRemote
	QoSNackRemote      = event.QoSNackRemote
	QoSAckLocal        = event.QoSAckLocal
	QoSNackLocal       = event.QoSNackLocal
	Timeout            = event.Timeout
	ServerTxn          = event.ServerTxn
	ServerUpgrade      = event.ServerUpgrade
	EventWaitCancelled = event.EventWaitCancelled
	UpstreamLinkRetry  = event.UpstreamLinkRetry
	SinkJoin           = event.SinkJoin
	SinkPart           = event.SinkPart
	UserBase           = event.UserBase
)

// Payload flags (streams.md §4).
const (
	SOM           = event.SOM
	EOM           = event.EOM
	PollFlag      = event.PollFlag
	RelatedStart  = event.RelatedStart
	RelatedEnd    = event.RelatedEnd
	RideshareFlag = event.RideshareFlag
	PerfJSON      = event.PerfJSON
)

// StateBound is how many undelivered state events a stream holds before it
// stops making progress: no new connection attempt starts (a proxied
// stream's link neither retries nor reads) until the application has read
// half of them. States are never dropped; received payload is bounded by
// Config.RxBuffer. See docs/stream-states.md.
const StateBound = stream.StateBound
