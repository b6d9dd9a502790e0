package transport

import (
	"context"
	"net"

	"github.com/securestreams/ss/policy"
)

// Response is what the application decided for the current server
// transaction (docs/streams.md §10.2 step 5).
type Response struct {
	// Status is the HTTP status: 0 when Respond was not called (the
	// transport then uses 404), else the value given (Respond(0) is 200).
	Status int
	// Metadata and Extra are the stream's current values (mapped items become
	// response headers; direct_proto_str "name:" items too).
	Metadata []MetadataValue
	Extra    map[string]string
}

// ServerTx is the accepted stream's transmit side: the TxSource plus the
// response the application set up before sending.
type ServerTx interface {
	TxSource
	// Response returns the application's current response settings. The
	// stream updates them synchronously in Respond/SetMetadata, so a value set
	// before Send is visible here when the chunk sent after it arrives.
	Response() Response
	// NewTransaction clears the previous transaction's Respond status (h1
	// keep-alive: each request starts with no status).
	NewTransaction()
}

// ServerConn is one accepted connection (or one h2 stream), handed by a
// Listener to the runtime, which creates an accepted stream for it and calls
// Serve on the stream's behalf.
type ServerConn interface {
	// Serve runs the accepted connection until it ends or ctx is cancelled
	// (the stream was destroyed: close the connection / reset the h2 stream).
	// It reports CONNECTED, SERVER_TXN, SERVER_UPGRADE, request fields as
	// metadata (method, path, auth, query args; only if declared), rx and
	// validity through sink. a.Tx is a ServerTx.
	Serve(ctx context.Context, a *Attempt, sink Sink) Result
	// RemoteAddr is the peer address, for logs.
	RemoteAddr() net.Addr
}

// Listener is an open server listener.
type Listener interface {
	Addr() net.Addr
	// Close stops accepting and closes the listening socket; idempotent.
	Close() error
}

// ServerProtocol opens listeners for server streamtypes (h1/h2 with optional
// websocket upgrade, raw).
type ServerProtocol interface {
	// Listen opens the listener for st (TCP endpoint:port, unix +path / +@name,
	// TLS from server_cert/server_key) and calls accept for every accepted
	// connection, from the listener's own goroutine(s); accept must not block
	// for long. Accepting stops when the returned Listener is closed or ctx is
	// done.
	Listen(ctx context.Context, st *policy.Streamtype, env *Env, accept func(ServerConn)) (Listener, error)
}
