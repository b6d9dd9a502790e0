// Package ws is the WebSocket protocol adapter of docs/streams.md §11.6, built on
// gorilla/websocket.
//
// New returns the client Protocol: it performs the handshake (path, Host,
// subprotocol and the §11.2.2 header pipeline), reports CONNECTED and then
// runs RunConn. RunConn is the message pump over an established connection,
// shared with the HTTP server after a server-side upgrade.
//
// gorilla does the handshake only. Frames are written by this package so
// that one tx chunk is exactly one frame (gorilla's writer splits messages
// at its buffer size and cannot end a frame without ending the message),
// and read by it (reader.go) so that a read can be interrupted by a
// deadline and resumed, which lets Stream.Recv read a plain connection on
// the application's goroutine (pull.go); gorilla's reader fails for good
// after a deadline.
package ws
