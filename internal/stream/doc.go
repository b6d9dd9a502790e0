// Package stream is the stream actor: the single owner of one stream's state.
//
// A Stream holds the state machine with the legal-transition table of
// docs/streams.md §3, the client lifecycle (§5), retry and backoff (§6),
// connection validity (§7), the stream timeout (§8), metadata (§9), the
// transmit queue handed to transports as their transport.TxSource, and the
// ordered event queue that feeds the user's channel.
//
// Concurrency: the stream's protoactor actor is the only owner of the
// lifecycle (actorState) and the only one that emits states. A client
// stream that waits for the application gets its actor from the first
// request that needs one (tell, spawnLazy), so an idle stream holds no
// actor (docs/supervision.md "When a stream's actor is spawned"); timers are
// time.AfterFunc timers that send the actor a message. The actor processes
// its messages on the goroutine that sends them (actor.PropsInline): a
// Tell to an idle stream actor runs Receive in the sender's call, one
// message at a time as always, without a goroutine started per wake (a
// goroutine hand-off per message cost more than the Receive, PERFORMANCE.md
// "h1/h2/h3 GET rate"). So nothing may call into a stream (its methods, a
// sink, a gate's notify) while holding a lock the actor takes: Stream.mu,
// txQueue.mu, a gate's lock (Gate.Check), Host.mu. Transports run in
// their own goroutine (one per attempt) and report through a
// transport.Sink: Sink.Rx appends payload to the event queue directly (the
// hot path, under the stream's mutex); Sink.State appends a report that
// holds the state's place among the payload and wakes the actor, which
// decides it (emits or skips it) before the pump may pass it, so states and
// payload keep their order. Every field names its one writer beside it
// (docs/stream-states.md). Events reach the user through a
// pump goroutine that exists only while the queue is non-empty, so an idle
// stream has no goroutine. Received payload is bounded by a byte budget:
// Sink.Rx blocks while the user is behind (receive backpressure).
//
// Keepalive: a transport that can send a protocol keep-alive (ws PING, h2
// PING, MQTT PINGREQ) hands the stream a function that sends one, by
// asserting the Sink to PingSetter. The stream calls it from its validity
// timer (docs/streams.md §7) and cancels the attempt's context with cause
// ErrValidityTimeout when no confirmation arrives in time.
package stream
