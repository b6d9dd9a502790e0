// Package event holds the values a stream reports to its user: connection
// states, payload flags and the Event that carries either. The root package ss
// re-exports them; they live here so that stream, transport and proxy can use
// them without importing ss. Numeric values are the libwebsockets ones and
// travel unchanged in the SSSv1 proxy protocol.
package event

import (
	"strconv"

	"github.com/securestreams/ss/internal/bufpool"
)

// State is an advisory stream state (docs/streams.md §2). Values ≥ 1000 are user
// states emitted for http_resp_map hits.
type State uint32

// States, with the libwebsockets numbers (docs/streams.md §2 has the legal transitions).
const (
	Creating           State = 1  // the first event of every stream
	Disconnected       State = 2  // a connection (an HTTP transaction) ended; Err is its cause when it failed
	Unreachable        State = 3  // an attempt failed before CONNECTED; Err is the cause
	AuthFailed         State = 4  // an attempt is held because the stream's auth cannot be satisfied; Err says why
	Connected          State = 5  // the connection is up (HTTP: the response headers arrived)
	Connecting         State = 6  // an attempt started
	Destroying         State = 7  // the last event of every stream; the channel closes after it
	Poll               State = 8  // an attempt is due (a request or a retry)
	AllRetriesFailed   State = 9  // the retry policy is used up; Connect, Send or RequestTx start over
	QoSAckRemote       State = 10 // the peer confirmed: HTTP 2xx with the body complete; MQTT PUBACK/PUBCOMP (Ack numbers the message)
	QoSNackRemote      State = 11 // the peer did not confirm: HTTP non-2xx; MQTT no acknowledgement in time (Ack numbers the message)
	QoSAckLocal        State = 12 // an MQTT QoS 0 message was written to the connection (Ack numbers it)
	QoSNackLocal       State = 13 // a message could not be sent (e.g. an invalid MQTT topic after substitution)
	Timeout            State = 14 // the stream timeout (StartTimeout) expired; nothing else happens
	ServerTxn          State = 15 // accepted HTTP stream: a request's headers arrived
	ServerUpgrade      State = 16 // accepted stream: a WebSocket upgrade was accepted
	EventWaitCancelled State = 17 // a libwebsockets event-loop value; never emitted
	UpstreamLinkRetry  State = 18 // proxied stream: the proxy cannot be reached yet (Ack: ms since creation)
	SinkJoin           State = 19 // local sinks only (not implemented)
	SinkPart           State = 20 // local sinks only (not implemented)

	// UserBase is the first user state value.
	UserBase State = 1000
)

var stateNames = [...]string{
	Creating:           "CREATING",
	Disconnected:       "DISCONNECTED",
	Unreachable:        "UNREACHABLE",
	AuthFailed:         "AUTH_FAILED",
	Connected:          "CONNECTED",
	Connecting:         "CONNECTING",
	Destroying:         "DESTROYING",
	Poll:               "POLL",
	AllRetriesFailed:   "ALL_RETRIES_FAILED",
	QoSAckRemote:       "QOS_ACK_REMOTE",
	QoSNackRemote:      "QOS_NACK_REMOTE",
	QoSAckLocal:        "QOS_ACK_LOCAL",
	QoSNackLocal:       "QOS_NACK_LOCAL",
	Timeout:            "TIMEOUT",
	ServerTxn:          "SERVER_TXN",
	ServerUpgrade:      "SERVER_UPGRADE",
	EventWaitCancelled: "EVENT_WAIT_CANCELLED",
	UpstreamLinkRetry:  "UPSTREAM_LINK_RETRY",
	SinkJoin:           "SINK_JOIN",
	SinkPart:           "SINK_PART",
}

// String returns the libwebsockets name without its LWSSSCS_ prefix, or
// USER(n) for user states.
func (s State) String() string {
	if s >= UserBase {
		return "USER(" + strconv.FormatUint(uint64(s), 10) + ")"
	}
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return "STATE(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// IsUser reports whether s is a user state (≥ 1000).
func (s State) IsUser() bool { return s >= UserBase }

// Flags are payload flags (docs/streams.md §4).
type Flags uint32

// Payload flags, with the libwebsockets values.
const (
	SOM           Flags = 0x01
	EOM           Flags = 0x02
	PollFlag      Flags = 0x04 // wire-only "not data" marker
	RelatedStart  Flags = 0x08
	RelatedEnd    Flags = 0x10
	RideshareFlag Flags = 0x20 // wire-only: a rideshare name precedes the payload
	PerfJSON      Flags = 0x40
)

var flagNames = []struct {
	f Flags
	n string
}{
	{SOM, "SOM"}, {EOM, "EOM"}, {PollFlag, "POLL"}, {RelatedStart, "RELATED_START"},
	{RelatedEnd, "RELATED_END"}, {RideshareFlag, "RIDESHARE"}, {PerfJSON, "PERF_JSON"},
}

// String returns the set flags joined by '|', "0" when none.
func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	s := ""
	for _, fn := range flagNames {
		if f&fn.f != 0 {
			if s != "" {
				s += "|"
			}
			s += fn.n
			f &^= fn.f
		}
	}
	if f != 0 {
		if s != "" {
			s += "|"
		}
		s += "0x" + strconv.FormatUint(uint64(f), 16)
	}
	return s
}

// Kind says what an Event carries.
type Kind uint8

// Event kinds.
const (
	StateEvent   Kind = 1 // State and Ack are set
	PayloadEvent Kind = 2 // Payload and Flags are set
)

// String returns "state" or "payload".
func (k Kind) String() string {
	switch k {
	case StateEvent:
		return "state"
	case PayloadEvent:
		return "payload"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one entry of a stream's ordered event channel: a state change or a
// received payload chunk. A Payload handed to the user belongs to the user.
type Event struct {
	// Kind says which fields are set: State, Ack and Err for a StateEvent;
	// Payload and Flags for a PayloadEvent.
	Kind Kind
	// State is the stream's new state (a user state ≥ 1000 for an
	// http_resp_map hit).
	State State
	// Ack is 0 except for MQTT QoS states (the 1-based sequence number of the
	// message on this stream), UNREACHABLE (1 when DNS resolution found no
	// server) and UPSTREAM_LINK_RETRY (milliseconds since creation).
	Ack uint32
	// Payload is received data; it belongs to the receiver.
	Payload []byte
	// Flags mark message boundaries: SOM on the first chunk of a message, EOM
	// on the last (HTTP bodies end with a zero-length EOM chunk); raw streams
	// deliver 0 (no boundaries); PERF_JSON marks a performance report.
	Flags Flags
	// Err is the cause of an UNREACHABLE, DISCONNECTED, AUTH_FAILED, TIMEOUT
	// or ALL_RETRIES_FAILED state when one is known (nil otherwise): the
	// error that failed the attempt or ended the connection, wrapped so that
	// errors.Is and errors.As reach the underlying value (*net.OpError,
	// *tls.CertificateVerificationError, *transport.StatusError,
	// *transport.ConnackError, ...). See docs/errors.md.
	Err error
}

// String renders the event compactly, e.g. "CONNECTED" or "rx(SOM|EOM, 5 bytes)".
func (e Event) String() string {
	if e.Kind == PayloadEvent {
		return "rx(" + e.Flags.String() + ", " + strconv.Itoa(len(e.Payload)) + " bytes)"
	}
	if e.Ack != 0 {
		return e.State.String() + "(ack=" + strconv.FormatUint(uint64(e.Ack), 10) + ")"
	}
	return e.State.String()
}

// Release hands the Payload's buffer back to ss for reuse by later reads and
// sends, once the application is done with it: optional, and worth it for
// bulk receive (docs/performance.md). After Release neither this Payload nor
// any slice of it, in this Event or a copy of it, may be used, and Release
// must not be called twice for the same payload. It does nothing for a
// state event or a payload ss does not pool (small chunks).
func (e Event) Release() {
	if e.Kind == PayloadEvent {
		bufpool.Put(e.Payload)
	}
}
