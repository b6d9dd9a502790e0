package ss

import (
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/stream"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/internal/transport/httpc"
	"github.com/securestreams/ss/internal/transport/httpserver"
	"github.com/securestreams/ss/internal/transport/mqtt"
	"github.com/securestreams/ss/internal/transport/raw"
	"github.com/securestreams/ss/internal/transport/ws"
	"github.com/securestreams/ss/policy"
)

// The registration point of protocol adapters. Each transport package adds
// ONE line to each map it supports, with a constructor of exactly this
// shape, for example
//
//	policy.H1: httpc.NewH1,   // func NewH1(env *transport.Env) transport.Protocol
//
// A runtime constructs an adapter the first time a streamtype of its
// protocol is used, and closes it in Runtime.Close. Protocols missing here
// make Create (or Serve) fail with ErrUnsupportedProtocol.
var clientProtocols = map[policy.Protocol]func(env *transport.Env) transport.Protocol{
	policy.H1:   httpc.NewH1,
	policy.H2:   httpc.NewH2,
	policy.H3:   httpc.NewH3,
	policy.Raw:  raw.New,
	policy.MQTT: mqtt.New,
	policy.WS:   ws.New,
}

var serverProtocols = map[policy.Protocol]func(env *transport.Env) transport.ServerProtocol{
	policy.Raw: raw.NewServer,
	policy.H1:  httpserver.New,
	policy.H2:  httpserver.New,
}

// txFraming holds, per protocol, the check a stream applies to every tx
// chunk when Send or Write queues it (open: a message was started with SOM
// and not yet ended with EOM). A refused chunk is not queued and the call
// returns the error. Only ws frames its messages this way (docs/streams.md
// §11.6); the transport checks again when it writes.
var txFraming = map[policy.Protocol]func(open bool, flags event.Flags) error{
	policy.WS: ws.CheckFraming,
}

// metadataChecks holds, per client protocol, the check a stream applies to
// every metadata value the application sets (Create's WithMetadata and
// SetMetadata): the protocol's wire rules for header values, URL
// substitutions and topics (docs/security-validation.md). A refused value is
// not stored and the call returns a *ValueError naming the item. Each
// transport package adds ONE line with its CheckMetadata; the transports
// check again when they build a request.
var metadataChecks = map[policy.Protocol]func(st *policy.Streamtype, name, value string) error{
	policy.H1:   httpc.CheckMetadata,
	policy.H2:   httpc.CheckMetadata,
	policy.H3:   httpc.CheckMetadata,
	policy.WS:   ws.CheckMetadata,
	policy.MQTT: mqtt.CheckMetadata,
	policy.Raw:  raw.CheckMetadata,
}

// serverMetadataChecks is metadataChecks for accepted server streams (the
// values become response headers).
var serverMetadataChecks = map[policy.Protocol]func(st *policy.Streamtype, name, value string) error{
	policy.H1: httpserver.CheckMetadata,
	policy.H2: httpserver.CheckMetadata,
}

// metadataCheck binds the check registered for st's protocol in checks to
// st, nil when none is registered.
func metadataCheck(checks map[policy.Protocol]func(*policy.Streamtype, string, string) error, st *policy.Streamtype) func(name, value string) error {
	f := checks[st.Protocol]
	if f == nil {
		return nil
	}
	return func(name, value string) error { return f(st, name, value) }
}

// httpTraits: one transaction per attempt; its QOS_* completion cancels the
// stream timeout and resets the failure counter.
var httpTraits = stream.Traits{
	Transactional:   true,
	EndTimeoutOn:    []event.State{event.QoSAckRemote, event.QoSNackRemote, event.QoSAckLocal},
	ResetFailuresOn: []event.State{event.QoSAckRemote, event.QoSNackRemote, event.QoSAckLocal},
}

// protocolTraits holds, per protocol, what the stream needs to know about it
// (stream.Traits): registered here, next to the adapter and txFraming, so
// that package stream has no switch on protocol names.
var protocolTraits = map[policy.Protocol]stream.Traits{
	policy.H1: httpTraits,
	policy.H2: httpTraits,
	policy.H3: httpTraits,
	policy.MQTT: {
		// A publish's acknowledgement cancels the timeout; only the
		// broker's QOS_ACK_REMOTE proves the connection.
		EndTimeoutOn:    []event.State{event.QoSAckRemote, event.QoSNackRemote, event.QoSAckLocal},
		ResetFailuresOn: []event.State{event.QoSAckRemote},
	},
	policy.Raw: {TimeoutEndsWithConnection: true},
	policy.WS:  {TimeoutEndsWithConnection: true},
}

// traitsOf is the Host.Traits of every runtime.
func traitsOf(p policy.Protocol) stream.Traits { return protocolTraits[p] }
