// Package httpserver serves h1 and h2 server streamtypes (streams.md §10):
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
// The package never answers a request by itself: a request waits until the
// application sends the first response chunk, or the stream is destroyed
// (then the connection is closed, or the h2 stream reset). The only
// exception is a websocket upgrade asking for another subprotocol, refused
// with 400 as the spec requires.
package httpserver
