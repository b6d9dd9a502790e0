// Package ws is the WebSocket protocol adapter of docs/streams.md §11.6, built on
// gorilla/websocket.
//
// New returns the client Protocol: it performs the handshake (path, Host,
// subprotocol and the §11.2.2 header pipeline), reports CONNECTED and then
// runs RunConn. RunConn is the message pump over an established connection,
// shared with the HTTP server after a server-side upgrade.
//
// gorilla does the handshake, reading, frame parsing and the close
// handshake's error values; frames are written by this package so that one tx
// chunk is exactly one frame (gorilla's writer splits messages at its buffer
// size and cannot end a frame without ending the message).
package ws
