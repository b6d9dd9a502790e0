package ss

import (
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/stream"
)

// State is an advisory stream state; the values are libwebsockets' (the
// constants below). Its String method gives the lws name without the
// LWSSSCS_ prefix ("CONNECTED"; "USER(1001)" for a user state), and IsUser
// reports a user state (1000 and up: an http_resp_map hit).
type State = event.State

// Flags are payload flags (SOM, EOM, ...); the values are libwebsockets'.
// Its String method joins the set flags' names with '|'.
type Flags = event.Flags

// Kind says whether an Event carries a state or payload; String gives
// "state" or "payload".
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
//
// Methods: String describes the event compactly ("CONNECTED",
// "rx(SOM|EOM, 5 bytes)"). Release hands the Payload's buffer back to ss for reuse once
// the application is done with it: optional, worth it for bulk receive;
// afterwards neither the Payload nor any slice of it may be used, and it
// must not be released twice (docs/performance.md).
type Event = event.Event

// Event kinds.
const (
	// StateEvent: Event.State (with Ack and Err) is set.
	StateEvent = event.StateEvent
	// PayloadEvent: Event.Payload and Event.Flags are set.
	PayloadEvent = event.PayloadEvent
)

// States, with the libwebsockets numbers (State.String gives the lws name
// without its LWSSSCS_ prefix). Creating is always first and Destroying
// always last; docs/stream-states.md draws the machine and
// docs/streams.md §2 lists the legal transitions. States an lws proxy may
// relay but ss never emits (EVENT_WAIT_CANCELLED 17, SINK_JOIN 19,
// SINK_PART 20) have no constant here; State.String still names them.
// http_resp_map hits are user states (State.IsUser: 1000 and up).
const (
	// Creating (CREATING, 1) is the first event of every stream.
	Creating = event.Creating
	// Disconnected (DISCONNECTED, 2): a connection (an HTTP transaction) ended; Err is its
	// cause when it failed.
	Disconnected = event.Disconnected
	// Unreachable (UNREACHABLE, 3): an attempt failed before Connected; Err is the cause
	// (never nil: ErrNoCause when the transport gave none).
	Unreachable = event.Unreachable
	// AuthFailed (AUTH_FAILED, 4): the stream's auth cannot be satisfied yet (for example
	// a token refresh fails); no attempt starts; Err says why.
	AuthFailed = event.AuthFailed
	// Connected (CONNECTED, 5): the connection is up (HTTP: the response headers arrived;
	// an accepted stream: at once).
	Connected = event.Connected
	// Connecting (CONNECTING, 6): a connection attempt started.
	Connecting = event.Connecting
	// Destroying (DESTROYING, 7) is the last event of every stream; the channel closes
	// after it.
	Destroying = event.Destroying
	// Poll (POLL, 8): an attempt is due (a transmit request or a retry).
	Poll = event.Poll
	// AllRetriesFailed (ALL_RETRIES_FAILED, 9): the streamtype's retry policy is used up; Connect,
	// Send or RequestTx start over. Err is the last cause.
	AllRetriesFailed = event.AllRetriesFailed
	// QoSAckRemote (QOS_ACK_REMOTE, 10): the peer confirmed. HTTP: a 2xx answer whose body is
	// complete (the transaction is done; the stream is idle). MQTT: PUBACK
	// or PUBCOMP; Ack numbers the message.
	QoSAckRemote = event.QoSAckRemote
	// QoSNackRemote (QOS_NACK_REMOTE, 11): the peer did not confirm. HTTP: a status other than
	// 2xx. MQTT: no acknowledgement in time; Ack numbers the message.
	QoSNackRemote = event.QoSNackRemote
	// QoSAckLocal (QOS_ACK_LOCAL, 12): an MQTT QoS 0 message was written to the connection;
	// Ack numbers it.
	QoSAckLocal = event.QoSAckLocal
	// QoSNackLocal (QOS_NACK_LOCAL, 13): a message could not be sent (for example an invalid
	// MQTT topic after substitution).
	QoSNackLocal = event.QoSNackLocal
	// Timeout (TIMEOUT, 14): the stream timeout (StartTimeout) expired; Err is a
	// *TimeoutError. Nothing else happens.
	Timeout = event.Timeout
	// ServerTxn (SERVER_TXN, 15): on an accepted HTTP stream, a request's headers arrived
	// (answer it with Respond, SetMetadata and Send).
	ServerTxn = event.ServerTxn
	// ServerUpgrade (SERVER_UPGRADE, 16): on an accepted stream, a WebSocket upgrade was
	// accepted.
	ServerUpgrade = event.ServerUpgrade
	// UpstreamLinkRetry (UPSTREAM_LINK_RETRY, 18): a proxied stream cannot reach the proxy yet and
	// keeps trying; Ack is the milliseconds since the stream was created.
	UpstreamLinkRetry = event.UpstreamLinkRetry
)

// Payload flags, with the libwebsockets values (docs/streams.md §4).
const (
	// SOM (0x01) marks the first chunk of a message (Write: the first fragment).
	SOM = event.SOM
	// EOM (0x02) marks the last chunk of a message (Write: the last fragment).
	EOM = event.EOM
	// RelatedStart (0x08) marks the empty chunk that precedes the parts of a
	// multipart HTTP response (each part then arrives as one SOM|EOM chunk).
	RelatedStart = event.RelatedStart
	// RelatedEnd (0x10) marks the last part of a multipart HTTP response.
	RelatedEnd = event.RelatedEnd
	// PerfJSON (0x40) marks a chunk that is a connection-performance report (JSON,
	// streamtypes with "perf": true), not data from the peer; it always
	// comes with SOM|EOM.
	PerfJSON = event.PerfJSON
)

// StateBound is how many undelivered state events a stream holds before it
// stops making progress: no new connection attempt starts (a proxied
// stream's link neither retries nor reads) until the application has read
// half of them. States are never dropped; received payload is bounded by
// Config.RxBuffer. See docs/stream-states.md.
const StateBound = stream.StateBound
