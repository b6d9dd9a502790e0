package ss

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"time"

	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/auth"
	"github.com/securestreams/ss/internal/stream"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
	"github.com/securestreams/ss/proxy"
)

// Config configures a Runtime. The zero value of every field works except
// Policy, which is required.
type Config struct {
	// Policy is the policy streams are created from (policy.Parse, ParseFile or
	// generated code). Required unless Proxy is set.
	Policy *policy.Policy
	// Proxy, when set, makes every stream a proxied stream fulfilled by the
	// SS proxy at this address (docs/wire.md; "unix:@proxy.ss.lws",
	// "unix:/path" or "tcp:host:port"; see proxy.ParseAddress), or a tcp:
	// address reached through a SOCKS5 server:
	// "socks5://[user[:password]@]host:port/tcp:host:port". Policy is
	// then optional: when it has the streamtype it is used for local checks.
	Proxy string
	// ProxyTxFrame is the largest payload a proxied stream sends in one
	// TX_PAYLOAD frame (0: 4061, the lws client's default, safe with lws
	// proxies; at most 65519). This library's proxy accepts frames up to the
	// streamtype's proxy_buflen (default 32768); larger frames cost less.
	ProxyTxFrame int
	// ProxyLimits bound what the clients of Runtime.ServeProxy can make it
	// hold or do (links, metadata, queued bytes, control-frame rate); the
	// zero value gives the defaults listed in docs/proxy.md.
	ProxyLimits proxy.ServerLimits
	// Logger receives the library's logs; nil is silent.
	Logger *slog.Logger
	// DialContext opens network connections (nil: net.Dialer). Tests inject
	// loopback or fault-injecting dialers here.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// ListenPacket opens UDP sockets for QUIC (nil: net.ListenPacket).
	ListenPacket func(network, addr string) (net.PacketConn, error)
	// SystemRoots replaces the OS roots for streamtypes without a trust store.
	SystemRoots *x509.CertPool
	// Cookies is the jar for streamtypes with http_cookies (nil: a private
	// in-memory net/http/cookiejar per runtime, without a public suffix
	// list). Set it to persist cookies or to share them between runtimes.
	Cookies http.CookieJar
	// Auth configures the token providers of lwa and jwt auth schemes.
	// Credentials themselves (tokens, client certificates, SigV4 and LWA
	// credentials, JWT keys) go in the runtime's store, Runtime.Blobs
	// (docs/auth.md).
	Auth AuthConfig
	// Device is the initial device identity (Blobs().SetDevice changes it),
	// sent in the http_dsn/fwv/devtype headers of each request and the
	// default JWT subject.
	Device auth.Device
	// MQTT broker-connection identity.
	MQTTClientID, MQTTUsername, MQTTPassword string

	// Time limits (docs/streams.md §11.1); zero means the library default.
	ConnectTimeout    time.Duration // establishment, 15 s
	HeaderTimeout     time.Duration // HTTP response headers, 15 s
	BodyIdleTimeout   time.Duration // HTTP response body idle, 30 s
	MQTTAckTimeout    time.Duration // QoS ≥ 1 acknowledgement, 9 s
	SharedIdleTimeout time.Duration // idle shared h2/h3 connection, 60 s

	// RxBuffer and TxBuffer bound the received payload queued for the
	// application and the tx data queued for the network, per stream, in
	// bytes (0: 256 KiB each).
	RxBuffer, TxBuffer int

	// EventLoop parks the socket of every connected raw stream without
	// TLS in an event loop the runtime owns (one epoll set watched by one
	// goroutine, Linux only; ignored elsewhere): an idle connection then
	// has no goroutine, and what arrives is read by the loop and queued
	// for the application (PERFORMANCE.md, "Connected raw stream"). Recv
	// on such a stream returns what the loop queued; it does not read the
	// socket itself. Other protocols and TLS connections are not
	// affected. Off by default.
	EventLoop bool

	// AcceptBacklog bounds, per Server, the accepted connections not yet
	// taken from Server.Accepted (0: 64). Beyond it new connections are
	// closed at once (logged at WARN once per episode, counted in
	// ServerStats.Rejected); see docs/supervision.md.
	AcceptBacklog int

	// Actors runs the stream actors in an actor system the application owns
	// (actor.Wrap); nil creates a private one.
	Actors *actor.System

	// PolicyFetch configures fetch_policy: size limit, signature keys,
	// whether New fetches (docs/fetch-policy.md).
	PolicyFetch PolicyFetchConfig
	// CheckNetworkAtStart runs captive portal detection as New returns
	// when the policy has a captive_portal_detect streamtype
	// (docs/captive-portal.md).
	CheckNetworkAtStart bool
	// HoldUntilOnline holds every client stream's connection attempts
	// (except the captive_portal_detect stream's) until captive portal
	// detection reports InternetOK; a held stream emits no state and
	// consumes no retry. It implies CheckNetworkAtStart. Without a
	// captive_portal_detect streamtype in the policy nothing is held.
	HoldUntilOnline bool

	// Jitter returns a uniform integer in [0, n) for backoff jitter (nil:
	// math/rand/v2). Tests make delays exact with it.
	Jitter func(n int64) int64
}

func (c *Config) env() *transport.Env {
	jar := c.Cookies
	if jar == nil {
		jar, _ = cookiejar.New(nil) // never fails with nil options
	}
	return transport.Env{
		Logger: c.Logger, DialContext: c.DialContext, ListenPacket: c.ListenPacket,
		SystemRoots: c.SystemRoots, Cookies: jar,
		Device: transport.Device(c.Device), MQTTClientID: c.MQTTClientID,
		MQTTUsername: c.MQTTUsername, MQTTPassword: c.MQTTPassword,
		ConnectTimeout: c.ConnectTimeout, HeaderTimeout: c.HeaderTimeout,
		BodyIdleTimeout: c.BodyIdleTimeout, MQTTAckTimeout: c.MQTTAckTimeout,
		SharedIdleTimeout: c.SharedIdleTimeout,
	}.Defaults()
}

// Option adjusts one Create or Serve call.
type Option func(*createOptions) error

type createOptions struct {
	metadata []stream.Metadata
}

// WithMetadata sets a metadata value before the stream starts (so it is
// already substituted into the first attempt's endpoint).
func WithMetadata(name, value string) Option {
	return func(o *createOptions) error {
		if name == "" {
			return fmt.Errorf("%w: empty name", ErrUndeclaredMetadata)
		}
		o.metadata = append(o.metadata, stream.Metadata{Name: name, Value: value})
		return nil
	}
}
