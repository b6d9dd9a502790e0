// Package transport holds the contract between a stream actor and the wire
// protocol adapters (raw, h1, h2, h3, ws, mqtt), plus what they share:
// endpoint resolution, dialing with socket options and SOCKS5, and TLS setup.
//
// One Protocol value exists per protocol per runtime. For every connection
// attempt the stream actor starts one goroutine that calls Protocol.Run; Run
// performs the attempt and, once connected, the whole connection, reporting
// progress through a Sink, and returns when the connection or attempt is over
// (or its ctx is cancelled by Disconnect/Destroy), or, for a connection it
// parks in an event loop (ParkedSink), once parked.
package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/evloop"
	"github.com/securestreams/ss/policy"
)

// Chunk is one piece of tx data supplied by the application.
type Chunk struct {
	Data  []byte
	Flags event.Flags // SOM/EOM; ignored by raw
	// Len is the length hint for the whole message/body that this chunk
	// starts (RequestTxLen), -1 when unknown. Only meaningful with SOM.
	Len int64
}

// TxSource is the stream's transmit queue as seen by a transport.
type TxSource interface {
	// Next blocks until the application supplies a chunk, or ctx is done
	// (then it returns ctx.Err()). Chunks come in the order they were sent.
	Next(ctx context.Context) (Chunk, error)
	// Pending reports whether a chunk is queued or the application has asked
	// to transmit (RequestTx) and not yet been served. HTTP uses it to decide
	// whether a POST/PUT/PATCH request has a body.
	Pending() bool
	// LenHint is the length announced with RequestTxLen for the next
	// message/body, -1 when none.
	LenHint() int64
}

// Sink receives what a transport learns. Calls made from one goroutine are
// delivered to the application in the order made. State and SetMetadata never
// block for long; Rx blocks while the application's event queue is full
// (receive backpressure) and returns an error when ctx is done or the stream
// is going away, in which case the transport should stop and return.
type Sink interface {
	// State reports CONNECTED, user states (http_resp_map), QOS_* states,
	// SERVER_TXN / SERVER_UPGRADE. The stream checks and emits them; it derives
	// "the connection reached CONNECTED" from the CONNECTED call, and treats
	// completions per docs/streams.md §6.3/§8 (HTTP QOS_ACK/NACK_REMOTE: transaction
	// complete; MQTT QOS_ACK_REMOTE/QOS_ACK_LOCAL: publish acknowledged).
	State(s event.State, ack uint32)
	// SetMetadata stores a value captured from the peer (response header,
	// server request field). name is a declared metadata name, or for
	// direct_proto_str a raw header name ending in ':'.
	SetMetadata(name, value string)
	// Rx delivers received payload. data may be retained by the stream: the
	// transport must not reuse the slice afterwards.
	Rx(ctx context.Context, data []byte, flags event.Flags) error
	// ValidityConfirmed marks the connection as proven alive (docs/streams.md §7).
	ValidityConfirmed()
	// Logger is the stream's logger (never nil; discards when the user gave none).
	Logger() *slog.Logger
}

// MetadataValue is one metadata value of a stream.
type MetadataValue struct {
	Value string
	Set   bool
}

// Attempt is everything one connection attempt needs. It is a snapshot built
// by the stream actor; transports must not modify it.
type Attempt struct {
	Policy *policy.Policy
	Type   *policy.Streamtype
	// Metadata holds the stream's values, indexed like Type.Metadata.
	Metadata []MetadataValue
	// Extra holds direct_proto_str headers set by the application ("name:" → value).
	Extra map[string]string
	Tx    TxSource
	Env   *Env
	// StreamID identifies the stream in logs.
	StreamID uint64
	// Poller, when set with a ParkedSink, is the event loop a plain
	// socket may be parked in once connected (raw: Result.Parked); nil
	// keeps the standard net path.
	Poller *evloop.Poller
}

// Value returns the value of metadata index i ("" when unset); it is the
// function Template.Expand wants.
func (a *Attempt) Value(i int) string {
	if i < 0 || i >= len(a.Metadata) {
		return ""
	}
	return a.Metadata[i].Value
}

// Lookup returns the value of the declared metadata item name.
func (a *Attempt) Lookup(name string) (string, bool) {
	i := a.Type.MetadataIndex(name)
	if i < 0 || i >= len(a.Metadata) {
		return "", false
	}
	return a.Metadata[i].Value, a.Metadata[i].Set
}

// Result says how Run ended.
type Result struct {
	// Err is why the attempt failed or the connection ended; nil for a normal
	// end (HTTP transaction complete, orderly close by the peer).
	Err error
	// RetryAfter is the minimum delay before the next attempt (HTTP 503/429
	// Retry-After), 0 when none.
	RetryAfter time.Duration
	// Completed is true when an HTTP transaction completed (response fully
	// received): the stream goes idle instead of reconnecting.
	Completed bool
	// Parked: the connection goes on without Run's goroutine, parked in
	// the attempt's event loop; its end comes later through
	// ParkedSink.End (only a ParkedSink's Run may return it).
	Parked bool
}

// Protocol is one wire protocol adapter, created once per runtime.
type Protocol interface {
	// Run performs one attempt and, when it connects, the whole connection.
	// It must return promptly when ctx is cancelled, and it must never call
	// application code. It reports a PERF_JSON rx (when Type.Perf) before
	// returning, as docs/streams.md §14 says.
	Run(ctx context.Context, a *Attempt, sink Sink) Result
	// Close releases shared resources (pooled connections); idempotent.
	Close(ctx context.Context) error
}

// Device is application-provided identity sent in blob headers.
type Device struct {
	Serial          string
	FirmwareVersion string
	Type            string
}

// Env is what every transport of one runtime shares. Fields may be nil/zero;
// Defaults fills them.
type Env struct {
	Logger *slog.Logger
	// Actors is the runtime's actor system: the mqtt connection manager and
	// its per-connection actors run in it (nil: the manager starts its own).
	Actors *actor.System
	// DialContext opens network connections (tcp, unix); tests inject here.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// ListenPacket opens UDP sockets for QUIC (nil: net.ListenPacket).
	ListenPacket func(network, addr string) (net.PacketConn, error)
	// SystemRoots replaces the OS roots for streamtypes without a trust
	// store (nil: the OS roots).
	SystemRoots *x509.CertPool
	// Cookies is the runtime's jar for streamtypes with http_cookies.
	Cookies http.CookieJar
	// Token returns the auth token held in slot (nil when unset).
	Token func(slot int) []byte
	// AWSCredentials retrieves the SigV4 credentials of slot
	// (auth.Store.Credentials).
	AWSCredentials func(ctx context.Context, slot int) (aws.Credentials, error)
	// ClientCert returns the TLS client certificate in slot.
	ClientCert func(slot int) (*tls.Certificate, error)
	// Device is the identity sent in the http_dsn/fwv/devtype headers
	// when DeviceID is nil.
	Device Device
	// DeviceID, when set, returns the current device identity
	// (auth.Store.Device); it is asked at every attempt, so a changed
	// identity reaches the next request (docs/auth.md).
	DeviceID func() Device
	// MQTT broker-connection identity from the application.
	MQTTClientID string
	MQTTUsername string
	MQTTPassword string

	// Time limits (docs/streams.md §11.1).
	ConnectTimeout    time.Duration // establishment, default 15 s
	HeaderTimeout     time.Duration // HTTP response headers, default 15 s
	BodyIdleTimeout   time.Duration // HTTP response body idle, default 30 s
	MQTTAckTimeout    time.Duration // QoS ≥ 1 acknowledgement, default 9 s
	SharedIdleTimeout time.Duration // shared h2/h3 connection idle close, default 60 s
}

// Defaults returns a copy of e with zero fields filled in.
func (e Env) Defaults() *Env {
	if e.Logger == nil {
		e.Logger = slog.New(slog.DiscardHandler)
	}
	if e.DialContext == nil {
		d := &net.Dialer{}
		e.DialContext = d.DialContext
	}
	if e.ListenPacket == nil {
		e.ListenPacket = net.ListenPacket
	}
	if e.Token == nil {
		e.Token = func(int) []byte { return nil }
	}
	if e.ConnectTimeout == 0 {
		e.ConnectTimeout = 15 * time.Second
	}
	if e.HeaderTimeout == 0 {
		e.HeaderTimeout = 15 * time.Second
	}
	if e.BodyIdleTimeout == 0 {
		e.BodyIdleTimeout = 30 * time.Second
	}
	if e.MQTTAckTimeout == 0 {
		e.MQTTAckTimeout = 9 * time.Second
	}
	if e.SharedIdleTimeout == 0 {
		e.SharedIdleTimeout = 60 * time.Second
	}
	return &e
}

// CurrentDevice is the device identity for this attempt's headers:
// DeviceID's answer when set, else Device.
func (e *Env) CurrentDevice() Device {
	if e.DeviceID != nil {
		return e.DeviceID()
	}
	return e.Device
}
