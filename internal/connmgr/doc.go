// Package connmgr shares MQTT broker connections between streams.
//
// A Manager keeps one broker connection per broker Identity (docs/streams.md
// §12.2): substituted host and port, TLS, trust store, client certificate
// slot, SOCKS5 proxy, client id and username. Streams Attach to it; the
// connection is reference-counted by its attachments and closed with
// DISCONNECT when the last one detaches.
//
// # Actors
//
// The Manager is an actor (through package actor) whose children are one
// connection actor per broker identity. The connection actor alone owns the
// paho client, the attachments and the routing table; paho's callbacks
// (PUBLISH, connection lost) forward to it without blocking, and the
// Manager's and Attachment's methods talk to it by message. Calls into paho
// that may wait (CONNECT, SUBSCRIBE, UNSUBSCRIBE, DISCONNECT) run on the
// caller's goroutine or a goroutine of their own, never inside an actor.
//
// Connection actors are supervised one for one: a panic in one restarts
// that actor only. The restart drops its broker connection (state after a
// panic is not trusted) and ends its attachments with an error wrapping
// ErrConnectionLost and ErrRestarted; their streams attach again through
// their own retry policy, which connects afresh and subscribes again. Other
// connections and the process are not affected. An actor that panics more
// than 10 times within 10 s is stopped (its attachments end with
// ErrClosed). Manager.PanicConnection injects such a panic for tests.
//
// Connection-level settings (keep alive, clean start, will, password) must
// agree between every stream sharing a connection: a stream that disagrees
// gets a *MismatchError naming both streamtypes and the key, from Attach and
// earlier from CheckCompatible. Nothing is ever merged silently.
//
// Reconnection is driven by the streams, not by the Manager: when a broker
// connection is lost every attachment's Done channel closes, each stream ends
// its connection (NACKing what was not acknowledged) and follows its own retry
// policy; the first stream to attach again opens one new broker connection,
// the others join it, and each subscribes again. This keeps the state
// sequences deterministic and the backoff per stream, as docs/streams.md §11.5.6
// describes.
//
// # Bounds on what a broker can make us hold
//
// Incoming PUBLISHes are routed by topic-filter matching (+ and #, with the
// $-topic rule) to every attachment whose filter matches, into a
// per-attachment queue. The policy at the limit is backpressure, then
// eviction; nothing is dropped without its stream being told:
//   - The connection reads from the broker only while fewer than
//     Config.RxQueue PUBLISHes wait in its actor's mailbox (paho's handler
//     hands each over without blocking; the network reader waits instead).
//   - When an attachment's queue reaches Config.RxQueue the connection stops
//     reading (TCP backpressure for the whole connection) until that
//     stream takes its messages. If it has not made room within
//     Config.RxStall it is evicted with ErrSlowConsumer (its stream sees the
//     connection end and reconnects) and reading resumes. So a slow stream
//     holds the others up for a bounded time only.
//   - A queue can exceed RxQueue only by the few packets paho had read
//     before the reader stopped.
//
// On a persistent session (client id set, clean start off) a broker sends
// what it queued right after CONNACK, before the streams have subscribed
// again: messages no filter matches are then kept (at most 1,024; overflow is
// logged) and handed to the attachment that subscribes a matching filter.
//
// The network connection is opened by one dial step (link.openConn, which
// calls Request.Dial: the transport's dialer for unix sockets, SOCKS5,
// trust stores, socket options); paho never dials itself, never reconnects
// by itself, and its handlers never block. See docs/mqtt-connections.md.
package connmgr
