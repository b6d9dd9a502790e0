package ss

import (
	"errors"

	"github.com/securestreams/ss/internal/connmgr"
	"github.com/securestreams/ss/internal/stream"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/internal/transport/ws"
	"github.com/securestreams/ss/proxy"
)

// Errors. Those returned by streams are shared with package stream, so
// errors.Is works whichever layer returned them.
var (
	// ErrUnknownStreamtype: the policy has no streamtype of that name.
	ErrUnknownStreamtype = errors.New("ss: unknown streamtype")
	// ErrUnsupportedProtocol: no transport is registered for the streamtype's
	// protocol (see protocols.go), or it cannot serve.
	ErrUnsupportedProtocol = errors.New("ss: unsupported protocol")
	// ErrServerStreamtype: Create was called for a "server": true
	// streamtype (use Serve), or Serve for a client streamtype.
	ErrServerStreamtype = errors.New("ss: wrong streamtype role")
	// ErrNoActorSystem: CreateProps on a runtime without Config.Actors.
	ErrNoActorSystem = errors.New("ss: CreateProps needs Config.Actors (the application's actor system)")
	// ErrProxiedProps: CreateProps on a proxied runtime (Config.Proxy):
	// proxied streams are driven by their proxy link, not by a stream actor
	// the application could supervise; use Create.
	ErrProxiedProps = errors.New("ss: CreateProps is not available on a proxied runtime (Config.Proxy): use Create")
	// ErrNilOption: a nil Option was passed to Create, CreateProps or Serve.
	ErrNilOption = errors.New("ss: nil option")
	// ErrNoPolicy: Config.Policy (or SetPolicy's argument) is nil.
	ErrNoPolicy = errors.New("ss: no policy")
	// ErrDestroyed: the stream (or server) has been destroyed.
	ErrDestroyed = stream.ErrDestroyed
	// ErrClosed: the runtime has been closed.
	ErrClosed = stream.ErrClosed
	// ErrUndeclaredMetadata: the streamtype does not declare the name.
	ErrUndeclaredMetadata = stream.ErrUndeclaredMetadata
	// ErrNotServer: Respond on a stream that is not an accepted server stream.
	ErrNotServer = stream.ErrNotServer
	// ErrValidityTimeout ends a connection that failed its validity check.
	ErrValidityTimeout = stream.ErrValidityTimeout
	// ErrRecvBusy: Stream.Recv was called while another Recv on the
	// same stream was under way.
	ErrRecvBusy = stream.ErrRecvBusy
	// ErrFraming: Write or Send on a ws stream broke the message framing
	// (SOM while a message is open, no SOM while none is); nothing was
	// queued (docs/ws.md).
	ErrFraming = ws.ErrFraming
	// ErrMismatch: Create of an mqtt stream that would share an open broker
	// connection whose connection-level settings differ; the error names
	// both streamtypes and the policy key (docs/mqtt-connections.md).
	ErrMismatch = connmgr.ErrMismatch
)

// StatusError is the HTTP status that failed a transaction or an attempt;
// errors.As finds it in Event.Err (see docs/errors.md).
//
//	type StatusError struct {
//		Code   int    // the HTTP status code
//		Status string // the status line's text as received ("503 Service Unavailable"), or ""
//	}
type StatusError = transport.StatusError

// ConnackError is an MQTT broker's CONNACK refusal code; errors.As finds it
// in Event.Err (see docs/errors.md).
//
//	type ConnackError struct {
//		Code byte // the CONNACK return code (1..5: version, identifier, unavailable, user/password, not authorized)
//	}
type ConnackError = transport.ConnackError

// Causes in Event.Err besides the transports' own errors (docs/errors.md).
var (
	// ErrStreamTimeout is wrapped by TIMEOUT's Err (a *TimeoutError).
	ErrStreamTimeout = stream.ErrStreamTimeout
	// ErrNoCause is UNREACHABLE's Err when the transport gave no cause.
	ErrNoCause = stream.ErrNoCause
	// ErrProxyLinkLost is wrapped by a proxied stream's DISCONNECTED Err
	// when the link to the proxy was lost (with the network error).
	ErrProxyLinkLost = proxy.ErrLinkLost
	// ErrProxyReported is wrapped by the Err of a state the proxy reported
	// (a *proxy.ReportedError: SSSv1 carries no cause).
	ErrProxyReported = proxy.ErrReported
	// ErrSlowConsumer is wrapped by the DISCONNECTED Err of an mqtt stream
	// detached from its broker connection because the application did not
	// read its messages for 5 s (docs/mqtt-connections.md).
	ErrSlowConsumer = connmgr.ErrSlowConsumer
)

// TimeoutError is TIMEOUT's Err: the stream timeout that expired. It wraps
// ErrStreamTimeout.
//
//	type TimeoutError struct {
//		After time.Duration // the duration that was armed
//	}
type TimeoutError = stream.TimeoutError
