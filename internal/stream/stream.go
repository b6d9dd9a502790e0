package stream

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/evloop"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// Config describes a stream to create.
type Config struct {
	Policy *policy.Policy
	Type   *policy.Streamtype
	// Protocol runs the stream's client attempts (nil for accepted streams).
	Protocol transport.Protocol
	// Conn is set for an accepted server stream: the stream serves it
	// instead of connecting (docs/streams.md §10.2).
	Conn transport.ServerConn
	// Metadata is applied before the stream starts (declared names, or
	// "name:" headers on direct_proto_str streamtypes).
	Metadata []Metadata
	// OnEnd is called once, from the actor, after DESTROYING was queued.
	OnEnd func(*Stream)
	// Framing, when set, checks every tx chunk as Send or Write queues it,
	// against whether a message is open (SOM given, EOM not yet); a chunk
	// it refuses is not queued and the call returns its error (ws:
	// docs/streams.md §11.6).
	Framing func(open bool, flags event.Flags) error
	// UpgradeFraming replaces Framing when an accepted stream reports
	// SERVER_UPGRADE (its connection now carries ws frames, docs/streams.md
	// §10.2).
	UpgradeFraming func(open bool, flags event.Flags) error
	// CheckMetadata, when set, checks every value the application sets
	// (Config.Metadata and SetMetadata) before it is stored: the protocol's
	// wire rules (docs/security-validation.md). A refused value is not
	// stored and SetMetadata returns the error.
	CheckMetadata func(name, value string) error
	// TxBudget and RxBudget, when > 0, replace the Host's budgets for this
	// stream (the SS proxy sizes them from the streamtype's proxy_buflen).
	TxBudget, RxBudget int
	// Gates hold every client attempt while one of them is closed (see
	// Gate); ignored for accepted streams.
	Gates []Gate
	// Deliver, when set, receives the stream's events instead of the
	// Events channel (which then only closes, after DESTROYING was
	// delivered): the SS proxy writes them to its client from the
	// goroutine that produced them, without a goroutine of its own per
	// link (PERFORMANCE.md, "ssproxy"). See eventQueue for the contract.
	Deliver func(ev event.Event, wait bool) bool
	// Poller, when set, is the event loop the stream's plain connections
	// are parked in once connected (transport.Attempt.Poller): the SS
	// proxy passes the poller of the link the stream serves, so that the
	// onward socket is read inline on the same thread as the link
	// (docs/proxy.md, "Event loop"). nil: the standard net path.
	Poller *evloop.Poller
	// OwnMailbox: the stream's lifecycle runs from a mailbox of its own
	// instead of a protoactor actor (mailbox.go): no actor's memory, and
	// nothing to supervise it (New only; the SS proxy's onward streams).
	OwnMailbox bool
}

// Metadata is one name/value pair.
type Metadata struct{ Name, Value string }

// rareConfig is the part of Config few streams set, kept out of Stream so
// that the others do not carry it (PERFORMANCE.md "Idle stream heap"). Set
// before the stream is shared, never written again.
type rareConfig struct {
	onEnd          func(*Stream)                            // Config.OnEnd
	txBud, rxBud   int                                      // Config.TxBudget, Config.RxBudget
	upgradeFraming func(open bool, flags event.Flags) error // Config.UpgradeFraming
	gates          []Gate                                   // Config.Gates
	poller         *evloop.Poller                           // Config.Poller
}

// noRare is the rareConfig of streams that set none of it.
var noRare rareConfig

func newRareConfig(cfg Config) *rareConfig {
	if cfg.OnEnd == nil && cfg.TxBudget == 0 && cfg.RxBudget == 0 && cfg.UpgradeFraming == nil && len(cfg.Gates) == 0 && cfg.Poller == nil {
		return nil
	}
	return &rareConfig{onEnd: cfg.OnEnd, txBud: cfg.TxBudget, rxBud: cfg.RxBudget, upgradeFraming: cfg.UpgradeFraming, gates: cfg.Gates, poller: cfg.Poller}
}

// cfg returns the stream's rareConfig (the zero one when it set none).
func (s *Stream) cfg() *rareConfig {
	if s.rare == nil {
		return &noRare
	}
	return s.rare
}

// Stream is one stream. All methods are safe from any goroutine, including
// the one ranging over Events.
type Stream struct {
	// Set before the stream is shared, never written again.
	h     *Host
	id    uint64
	pol   *policy.Policy
	st    *policy.Streamtype
	proto transport.Protocol
	conn  transport.ServerConn
	// rare holds the parts of Config few streams set (nil when none is);
	// read it through cfg().
	rare *rareConfig

	traits  *Traits                        // Host.Traits of the streamtype's protocol (shared by the host's streams)
	checkMD func(name, value string) error // Config.CheckMetadata
	remote  bool                           // created by NewRemote: the far end resolves StartTimeout(0)
	// lazy: New deferred the actor: the first message that needs it spawns
	// it (tell, spawnLazy; docs/supervision.md "When a stream's actor is
	// spawned").
	lazy bool
	// own: Config.OwnMailbox: messages go to the stream's own mailbox
	// (early, run by runOwn), never to a protoactor actor.
	own bool

	// Counters (their writers beside them), kept here where they fill the
	// bools' padding (Stream must stay within 696 bytes, TestStreamSize).
	attempts    atomic.Uint32 // connection attempts started; written only by the actor
	failures    atomic.Uint32 // mirror of the actor's consecutive-failure counter; written only by the actor
	timeoutUsed atomic.Bool   // StartTimeout was called once (set by the caller, never cleared): see qosNeedsActor

	// tx is the transmit queue: data plus a budget, with its own lock and
	// its writers named field by field (txqueue.go).
	tx txQueue

	// rxBudSet, when > 0, replaces rxBud: a proxied stream's client_buflen
	// from CREATE_RESULT. Written only by Remote.SetRxBudget (the driver).
	rxBudSet atomic.Int64

	mu sync.Mutex // guards the fields below
	// q is the event queue: data plus a bound, with producers and one
	// consumer (events.go says who appends and who removes).
	q eventQueue
	// cur is the state of the last state event queued, the "from" of the
	// transition check: it moves with the queue, written by whoever queues
	// a state (checkLocked): the actor on local streams (and the sink, for
	// an acknowledgement under the actor's upGen rule), the remote
	// stream's actor on remote streams (acceptRemoteLocked, finish).
	cur event.State
	// upGen is the attempt whose CONNECTED the actor accepted and whose end
	// it has not handled yet (0 none): the rule under which the sink may
	// queue an acknowledgement without the actor (sink.StateErr). Written
	// only by the actor.
	upGen uint32
	// pid is the stream's actor: set once, by setPID or the actor's
	// Started, whichever runs first.
	pid *actor.PID
	// early holds messages sent before the actor existed (NewProps, or a
	// lazy stream whose actor is being spawned): appended by tell (any
	// goroutine), taken once by setPID or Started.
	early []any
	// spawning: tell is spawning a lazy stream's actor (set once, by the
	// tell that spawns it); own-mailbox streams: the lifecycle started.
	spawning bool
	// running: own-mailbox streams: a goroutine is running the mailbox
	// (runOwn); set by the tell that starts it, cleared by runOwn.
	running bool
	// remoteUp: remote streams: CONNECTED decided and not ended. Written
	// only by the remote stream's actor (acceptRemoteLocked).
	remoteUp bool
	// ended: DESTROYING is queued. Set once, by whoever queues it: the
	// actor (endLocked), or endUnstarted / abort for a stream whose actor
	// never ran (pid nil), remoteActor.finish on remote streams.
	ended bool
	// destroyTold: msgDestroy was sent; set once, by the first Destroy
	// (or Host.Close) to get here.
	destroyTold    bool
	added, removed bool // Host bookkeeping, under Host.mu: written by Host.add and Host.remove
	// md holds the declared metadata items (nil when none is declared):
	// each has an application half and a received half, with one writer
	// each (mdSlot in metadata.go).
	md        []mdSlot
	extra     *extraHeaders // direct_proto_str headers, sent and received (nil until the first; metadata.go)
	rideshare string        // written only by the transport (sink.SetRideshare; Remote.SetRideshare on remote streams)
	lastErr   error         // Stats.LastError; written only by the actor (acceptRemoteLocked on remote streams)
	// destroyed is what Destroy callers wait on: made by the first Destroy
	// to wait, closed once by endLocked (endUnstarted).
	destroyed chan struct{}

	rxBytes atomic.Uint64 // payload received (perf reports excluded); written only by pushRx (the transport, the driver)
	txBytes atomic.Uint64 // payload accepted; written only by Send/Write (push, sendDirect)
	// healthyAt: UnixNano when the running connection resets the failure
	// counter (the health time, health.go), 0 none; written only by the actor.
	healthyAt atomic.Int64

	// Validity (docs/streams.md §7). lastConfirm: UnixNano of the last
	// confirmation, written only by ValidityConfirmed. pings counts the
	// keep-alives the actor sent (written only by the actor); pongs is the
	// pings value the last confirmation answered (written only by
	// ValidityConfirmed): a confirmation tells the actor only while
	// pings > pongs, so confirmations cost no message otherwise.
	lastConfirm atomic.Int64
	pings       atomic.Uint64
	pongs       atomic.Uint64

	// a is the lifecycle, owned by the actor goroutine: allocated by the
	// actor's Started, so that a stream without an actor does not carry it.
	a *actorState
}

// prepare builds a stream and queues CREATING; its actor is not started.
// With lazy, a stream that waits for the application (not nailed up, not
// accepted) is marked to get its actor from the first message (New).
func prepare(h *Host, cfg Config, lazy bool) (*Stream, error) {
	s := &Stream{h: h, pol: cfg.Policy, st: cfg.Type, proto: cfg.Protocol, conn: cfg.Conn, rare: newRareConfig(cfg), own: cfg.OwnMailbox}
	s.id = h.nextID.Add(1)
	s.tx.s = s
	s.tx.framing = cfg.Framing
	s.checkMD = cfg.CheckMetadata
	s.q.deliver = cfg.Deliver
	s.q.hold = true
	if n := len(s.st.Metadata); n > 0 {
		s.md = make([]mdSlot, n)
	}
	for _, m := range cfg.Metadata {
		if err := s.SetMetadata(m.Name, m.Value); err != nil {
			return nil, err
		}
	}
	s.traits = h.traitsFor(s.st.Protocol)
	s.tx.retain = s.traits.Transactional && s.conn == nil
	if s.q.deliver == nil {
		s.q.ch = make(chan event.Event, s.chanRoom())
	} // else made by the first Events, if any (closeLocked)
	// Not nailed up: idle from the start, so tx wakes the actor.
	if s.conn == nil && !s.st.NailedUp && !s.st.Server {
		s.tx.armed, s.tx.armGen = true, 1
		s.lazy = lazy
	}
	if err := h.add(s); err != nil {
		return nil, err
	}
	s.emit(event.Creating, 0)
	return s, nil
}

// New creates a stream and queues CREATING. It starts the stream's actor
// at once when the stream has something to do by itself (a nailed_up or
// accepted stream connects or serves at once); a client stream that waits
// for the application gets its actor from the first request that needs one
// (Send, Write, RequestTx, Connect, StartTimeout, ...): an idle stream costs
// no actor (docs/supervision.md "When a stream's actor is spawned").
func New(h *Host, cfg Config) (*Stream, error) {
	s, err := prepare(h, cfg, true)
	if err != nil {
		return nil, err
	}
	if s.lazy {
		s.release()
		return s, nil
	}
	if s.own {
		s.startOwn()
		s.release()
		return s, nil
	}
	pid, err := h.Actors.Spawn(actor.PropsInline(s), "ss-")
	if err != nil {
		s.abort()
		return nil, err
	}
	s.setPID(pid)
	s.release()
	return s, nil
}

// NewProps creates a stream (CREATING queued) whose actor the application
// spawns itself from the returned Props, exactly once, in the host's actor
// system: for example as the child of an actor that supervises it. Until
// it is spawned the stream only queues requests.
func NewProps(h *Host, cfg Config) (*Stream, *actor.Props, error) {
	cfg.OwnMailbox = false
	s, err := prepare(h, cfg, false)
	if err != nil {
		return nil, nil, err
	}
	s.release()
	return s, actor.PropsInline(s), nil
}

// abort undoes prepare when the actor could not be spawned.
func (s *Stream) abort() {
	s.mu.Lock()
	s.q.final = true
	s.q.abandoned = true
	s.q.items, s.q.head = nil, 0 // held: never delivered
	s.ended = true
	s.q.closeLocked()
	s.mu.Unlock()
	s.h.remove(s)
}

// endUnstarted ends a stream whose actor was never spawned (NewProps whose
// Props the application did not spawn, or a lazy stream nobody asked
// anything of): DESTROYING, channel closed. It reports whether it did.
func (s *Stream) endUnstarted() bool {
	s.mu.Lock()
	if s.pid != nil || s.spawning || s.ended || (s.q.ch == nil && s.q.deliver == nil) {
		s.mu.Unlock()
		return false
	}
	// No longer live for Host.Streams before DESTROYING can be delivered,
	// as for a started stream (finishEvents). Close still counts it in its
	// wait until remove below.
	s.h.detach(s)
	s.emitLocked(event.Destroying, 0)
	s.ended = true
	if s.destroyed != nil {
		close(s.destroyed)
	}
	s.early = nil
	s.mu.Unlock()
	s.tx.close()
	s.h.remove(s)
	return true
}

// setPID records the spawned actor and forwards what was sent before.
func (s *Stream) setPID(pid *actor.PID) {
	s.mu.Lock()
	if s.pid != nil { // Started got there first and handled the early messages
		s.mu.Unlock()
		return
	}
	s.pid = pid
	early := s.early
	s.early = nil
	s.mu.Unlock()
	for _, m := range early {
		s.h.Actors.Tell(pid, m)
	}
}

// tell sends msg to the stream's actor, or keeps it until the actor has
// started (Props spawned by the application later). A lazy stream's first
// message spawns the actor, except one that asks an idle stream without an
// actor for nothing (Disconnect, CancelTimeout: no attempt runs, no timer
// is armed).
func (s *Stream) tell(msg any) {
	s.mu.Lock()
	if s.own {
		s.tellOwn(msg) // unlocks
		return
	}
	pid := s.pid
	if pid == nil {
		spawn := s.lazy && !s.spawning && !s.ended
		if spawn {
			switch msg.(type) {
			case msgDisconnect, msgCancelTimeout:
				s.mu.Unlock()
				return
			}
			s.spawning = true
		}
		s.early = append(s.early, msg)
		s.mu.Unlock()
		if spawn {
			s.spawnLazy()
		}
		return
	}
	s.mu.Unlock()
	s.h.Actors.Tell(pid, msg)
}

// spawnLazy spawns a lazy stream's actor (tell). The actor system refuses
// only once it is shutting down (the runtime is closing): the stream then
// ends (DESTROYING), as Close would have ended it.
func (s *Stream) spawnLazy() {
	pid, err := s.h.Actors.Spawn(actor.PropsInline(s), "ss-")
	if err != nil {
		s.h.Logger.Debug("ss: stream actor not spawned", "stream", s.id, "err", err)
		s.mu.Lock()
		s.spawning = false
		s.early = nil
		s.mu.Unlock()
		s.endUnstarted()
		return
	}
	s.setPID(pid)
}

// Stats are a stream's counters, for metrics.
type Stats struct {
	Attempts uint32 // connection attempts started
	Failures uint32 // current consecutive failures (the backoff counter)
	RxBytes  uint64 // payload bytes received
	TxBytes  uint64 // payload bytes queued for transmission
	// LastError is the cause of the last failed attempt or lost connection
	// (the Err of its UNREACHABLE or DISCONNECTED event), nil when none has
	// failed yet. A later success does not clear it.
	LastError error
}

// Stats returns the stream's counters.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	last := s.lastErr
	s.mu.Unlock()
	return Stats{Attempts: s.attempts.Load(), Failures: s.failuresNow(), RxBytes: s.rxBytes.Load(), TxBytes: s.txBytes.Load(),
		LastError: last}
}

// ID identifies the stream in logs.
func (s *Stream) ID() uint64 { return s.id }

// Type returns the streamtype the stream was created with.
func (s *Stream) Type() *policy.Streamtype { return s.st }

// Policy returns the policy the stream was created with.
func (s *Stream) Policy() *policy.Policy { return s.pol }

// Events returns the stream's ordered event channel: CREATING first,
// DESTROYING last, then closed. With Config.Deliver it only closes, after
// DESTROYING was delivered; it is made by the first call.
func (s *Stream) Events() <-chan event.Event {
	if s.q.deliver == nil {
		return s.q.ch // set before the stream is shared
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.q.ch == nil {
		s.q.ch = make(chan event.Event)
	}
	return s.q.ch
}

// Accepted reports whether the stream is an accepted server stream.
func (s *Stream) Accepted() bool { return s.conn != nil }

// Send queues p as one whole message (SOM|EOM, length len(p)), copying it,
// and asks for transmission (connecting an idle stream). It blocks while the
// transmit queue is full.
func (s *Stream) Send(ctx context.Context, p []byte) error {
	if ok, err := s.tx.sendDirect(ctx, p, event.SOM|event.EOM); ok {
		return err
	}
	return s.tx.push(ctx, transport.Chunk{Data: cloneTx(p), Flags: event.SOM | event.EOM, Len: int64(len(p))})
}

// Write queues one chunk with payload flags (SOM/EOM fragments), copying it.
// On streams with Config.Framing a chunk that breaks the message framing is
// refused with its error.
func (s *Stream) Write(ctx context.Context, p []byte, flags event.Flags) error {
	if ok, err := s.tx.sendDirect(ctx, p, flags); ok {
		return err
	}
	return s.tx.push(ctx, transport.Chunk{Data: cloneTx(p), Flags: flags, Len: -1})
}

// RequestTx asks for a transmit opportunity (RequestTx, docs/streams.md §5.2).
func (s *Stream) RequestTx() error { return s.tx.request(-1) }

// RequestTxLen is RequestTx announcing n as the length of the next message.
func (s *Stream) RequestTxLen(n int64) error {
	if n < 0 {
		n = 0
	}
	return s.tx.request(n)
}

// Connect asks for a connection attempt, resetting the failure counter.
func (s *Stream) Connect() error { return s.do(msgConnect{}) }

// Disconnect closes the connection (or aborts the attempt, or cancels the
// pending retry) and leaves the stream idle (docs/streams.md §5.6).
// A RequestTx or Send made after Disconnect returns starts a new attempt
// once the stream is idle; those made before are dropped with the
// connection.
func (s *Stream) Disconnect() error {
	if err := s.errIfEnded(); err != nil {
		return err
	}
	s.tx.disconnect()
	return s.do(msgDisconnect{})
}

// StartTimeout arms the stream timeout: d > 0 arms d; d == 0 uses the
// streamtype's timeout_ms (nothing when that is 0).
func (s *Stream) StartTimeout(d time.Duration) error {
	s.timeoutUsed.Store(true) // before the message: see qosNeedsActor
	if d <= 0 && s.remote {
		// docs/wire.md §3.7: sent as TIMEOUT_UPDATE 0; the proxy applies its
		// streamtype's timeout_ms.
		return s.do(msgStartTimeout{})
	}
	if d <= 0 {
		d = time.Duration(s.st.TimeoutMS) * time.Millisecond
		if d == 0 {
			return s.errIfEnded()
		}
	}
	return s.do(msgStartTimeout{d: d})
}

// CancelTimeout cancels the stream timeout.
func (s *Stream) CancelTimeout() error { return s.do(msgCancelTimeout{}) }

// ValidityConfirmed tells the stream its connection is proven alive.
func (s *Stream) ValidityConfirmed() {
	s.lastConfirm.Store(nowNano())
	sent := s.pings.Load()
	for {
		answered := s.pongs.Load()
		if answered >= sent {
			return
		}
		if s.pongs.CompareAndSwap(answered, sent) {
			s.tell(msgConfirmed{})
			return
		}
	}
}

// Respond sets the response status of the current server transaction
// (ServerAck: 0 means 200). It fails on client streams.
func (s *Stream) Respond(status int) error {
	if s.conn == nil {
		return ErrNotServer
	}
	return s.tx.respond(status)
}

// Rideshare returns the streamtype whose data is being transmitted in a
// rideshare chain (the stream's own streamtype when none).
func (s *Stream) Rideshare() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rideshare != "" {
		return s.rideshare
	}
	return s.st.Name
}

// PayloadFormat returns the streamtype's payload_fmt.
func (s *Stream) PayloadFormat() string { return s.st.PayloadFmt }

func (s *Stream) errIfEnded() error {
	s.mu.Lock()
	ended := s.ended || s.destroyTold
	s.mu.Unlock()
	if ended {
		return s.gone()
	}
	return nil
}

// gone is the error of a call on a destroyed stream: ErrDestroyed, or
// after the host's Close an error that is both ErrClosed and ErrDestroyed.
func (s *Stream) gone() error {
	if s.h.isClosed.Load() {
		return errClosedStream
	}
	return ErrDestroyed
}

func (s *Stream) do(msg any) error {
	if err := s.errIfEnded(); err != nil {
		return err
	}
	s.tell(msg)
	return nil
}

// Destroy ends the stream (docs/streams.md §5.7) and waits until DESTROYING has
// been queued (not delivered: it is safe to call while handling events) or
// ctx is done. It never fails because of ctx (the stream is being destroyed
// either way). Destroying again returns nil at once.
func (s *Stream) Destroy(ctx context.Context) error {
	if s.lazy && s.endUnstarted() {
		return nil // no actor was ever needed
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return nil
	}
	if s.destroyed == nil {
		s.destroyed = make(chan struct{})
	}
	done := s.destroyed
	told := s.destroyTold
	s.destroyTold = true
	s.mu.Unlock()
	if !told {
		s.tell(msgDestroy{})
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

func (s *Stream) destroyAsync() {
	if s.lazy && s.endUnstarted() {
		return
	}
	s.mu.Lock()
	told := s.destroyTold || s.ended
	s.destroyTold = true
	s.mu.Unlock()
	if !told {
		s.tell(msgDestroy{})
	}
}

// MetadataError is returned for a name the streamtype does not declare.
type MetadataError struct {
	Name, Streamtype string
}

func (e *MetadataError) Error() string {
	return "ss: undeclared metadata: streamtype " + quote(e.Streamtype) + " declares no " + quote(e.Name)
}

// Unwrap returns ErrUndeclaredMetadata.
func (e *MetadataError) Unwrap() error { return ErrUndeclaredMetadata }

func quote(s string) string { return "\"" + s + "\"" }
