package ss

import (
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/stream"
)

// State is an advisory stream state; the values are libwebsockets'.
type State = event.State

// Flags are payload flags; the values are libwebsockets'.
type Flags = event.Flags

// Kind says whether an Event carries a state or payload.
type Kind = event.Kind

// Event is one entry of a stream's event channel (Stream.Events): a state
// change or a received payload chunk, in the order they happened.
//
//	type Event struct {
//		Kind    Kind    // StateEvent: State, Ack and Err are set; PayloadEvent: Payload and Flags
//		State   State   // the new state (CREATING first, DESTROYING last; ≥ 1000: http_resp_map)
//		Ack     uint32  // MQTT QoS states: 1-based number of the message on the stream; else mostly 0
//		Payload []byte  // received data; it belongs to the receiver
//		Flags   Flags   // SOM on a message's first chunk, EOM on its last; raw: 0; PERF_JSON: perf report
//		Err     error   // cause of UNREACHABLE, DISCONNECTED, AUTH_FAILED, TIMEOUT, ALL_RETRIES_FAILED
//	}
//
// For an HTTP client stream QOS_ACK_REMOTE means the server answered 2xx and
// the body is complete (QOS_NACK_REMOTE: another status); the stream is then
// idle until the next request, and Destroy ends it (DESTROYING, then the
// channel closes). docs/streams.md describes every state and transition.
type Event = event.Event

// Event kinds.
const (
	StateEvent   = event.StateEvent
	PayloadEvent = event.PayloadEvent
)

// States, with the libwebsockets numbers. Creating is always first and
// Destroying always last; see the event package (go doc
// github.com/securestreams/ss/internal/event State) for what each one means, and
// docs/streams.md §2 for the legal transitions.
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

// Payload flags (docs/streams.md §4).
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
