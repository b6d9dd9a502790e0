// Package httpserver serves h1 and h2 server streamtypes (docs/streams.md §10):
// it opens the listener of a "server": true streamtype (TCP, unix socket or
// the listener of another server streamtype named by "!name"), optionally
// with TLS from server_cert/server_key, and turns every accepted HTTP/1.1
// connection, and every HTTP/2 stream, into a transport.ServerConn that the
// runtime wraps in an accepted stream.
//
// An accepted h1 stream reports CONNECTED once, then SERVER_TXN for every
// request on the connection (keep-alive), the request body as rx chunks, and
// writes the response the application supplies through its transport.ServerTx.
// A websocket upgrade with the streamtype's ws_subprotocol reports CONNECTED,
// SERVER_UPGRADE and then runs the ws message pump (transport/ws.RunConn).
//
// Listeners: TCP on endpoint:port (all interfaces when endpoint is empty),
// unix sockets for "+path" and "+@name", and "!name" to share the listener
// of server streamtype name (opened earlier through the same runtime Env).
// On a shared listener a websocket upgrade goes to the streamtype whose
// ws_subprotocol the client offers, everything else to the owner; the
// accepted stream of a shared h1 connection is created when its first
// request arrives (it must be routed), on an unshared one at accept. With
// tls, server_cert/server_key are served with ALPN h2 and http/1.1 (h2
// streamtypes) or http/1.1; an h2 streamtype without tls is served as
// HTTP/1.1 only. Websocket upgrades are h1 only (no h2 extended CONNECT).
//
// The package never answers a request by itself: a request waits until the
// application sends the first response chunk, or the stream is destroyed
// (then the connection is closed, or the h2 stream reset). The only
// exception is a websocket upgrade asking for another subprotocol, refused
// with 400 as the spec requires.
package httpserver
