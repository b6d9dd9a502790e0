// Package connmgr shares MQTT broker connections between streams.
//
// A Manager keeps one broker connection per broker Identity (streams.md
// §12.2): substituted host and port, TLS, trust store, client certificate
// slot, SOCKS5 proxy, client id and username. Streams Attach to it; the
// connection is reference-counted by its attachments and closed with
// DISCONNECT when the last one detaches.
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
// sequences deterministic and the backoff per stream, as streams.md §11.5.6
// describes.
//
// Incoming PUBLISHes are routed by topic-filter matching (+ and #, with the
// $-topic rule) to every attachment whose filter matches, through a bounded
// per-attachment queue. The paho handler never blocks for long: when an
// attachment's queue is full the handler waits at most Config.RxStall (this
// pauses reading from the broker, i.e. TCP backpressure for the whole
// connection), and if the attachment still has no room it is evicted with
// ErrSlowConsumer (its stream sees the connection end and reconnects). So a
// slow stream can hold the others up for a bounded time only, no message is
// dropped without its stream being told, and no queue grows without bound.
//
// On a persistent session (client id set, clean start off) a broker sends
// what it queued right after CONNACK, before the streams have subscribed
// again: messages no filter matches are then kept (at most 1,024; overflow is
// logged) and handed to the attachment that subscribes a matching filter.
//
// The network connection is opened by Request.Dial (the transport's dialer:
// unix sockets, SOCKS5, trust stores, socket options); paho never dials
// itself, never reconnects by itself, and its handlers never block.
package connmgr
