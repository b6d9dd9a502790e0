package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/evloop"
)

// DefaultStreamTypeTimeout is how long the proxy waits for a new link's
// STREAMTYPE (docs/wire.md §7.4).
const DefaultStreamTypeTimeout = 3 * time.Second

// Onward creates the proxy's onward streams: ordinary streams of the
// proxy's runtime, fulfilled on the clients' behalf (docs/wire.md §6.3). The root
// package adapts a *ss.Runtime (Runtime.ServeProxy); tests may fake it.
type Onward interface {
	// Create creates a client stream of the named streamtype for a proxied
	// client. It fails for unknown and server streamtypes.
	Create(ctx context.Context, req CreateRequest) (OnwardStream, OnwardInfo, error)
}

// CreateRequest is what a client's STREAMTYPE asks for.
type CreateRequest struct {
	Streamtype string
	// Credit is the initial receive window the client offers the onward
	// peer (h2/h3 only).
	Credit int32
	// PID is the client's process id, for logs.
	PID uint32
	// Deliver, when the Onward supports it, receives the stream's events
	// instead of its Events channel (internal/stream Config.Deliver has the
	// contract), and OnwardInfo.Delivers says so: the link then writes
	// them from the goroutine that produced them and needs no forwarding
	// goroutine of its own.
	Deliver func(ev event.Event, wait bool) bool
	// Poller is the event loop the link is read in (nil: none, the link
	// has a goroutine). The onward stream parks its plain connections in
	// it (internal/stream Config.Poller), read inline on the same thread.
	Poller *evloop.Poller
}

// OnwardInfo is what the proxy needs to know about a created stream's
// streamtype.
type OnwardInfo struct {
	// Rideshares is the streamtype's name followed by the streamtypes
	// reached through rideshare links (sent in CREATE_RESULT).
	Rideshares []string
	// ClientBuflen is the policy's client_buflen as written (0 if unset).
	ClientBuflen uint32
	// ProxyBuflen bounds one TX_PAYLOAD (0: DefaultProxyBuflen).
	ProxyBuflen int
	// RxflowOnAbove and RxflowOffBelow bound the bytes waiting to be
	// written to the client (0: ProxyBuflen and half of it).
	RxflowOnAbove, RxflowOffBelow int
	// Metadata are the declared metadata names; values the onward stream
	// captures from its peer are forwarded as METADATA frames.
	Metadata []string
	// EarlyConnected: an HTTP POST, PUT or PATCH streamtype. Clients send
	// the body only after CONNECTED, so CONNECTED is sent to the client as
	// soon as an attempt starts (CONNECTING) and the onward CONNECTED that
	// follows the response is not repeated; a failure before it is reported
	// as DISCONNECTED (docs/wire.md §6.3).
	EarlyConnected bool
	// Delivers: the stream hands its events to CreateRequest.Deliver (its
	// Events channel only closes, after DESTROYING).
	Delivers bool
}

// OnwardStream is the part of a stream (*ss.Stream) the proxy uses.
type OnwardStream interface {
	Events() <-chan event.Event
	Write(ctx context.Context, p []byte, flags event.Flags) error
	SetTxLen(n int64) error
	RequestTx(ctx context.Context) error
	Connect(ctx context.Context) error
	SetMetadata(name, value string) error
	Metadata(name string) (string, bool)
	StartTimeout(d time.Duration) error
	CancelTimeout() error
	Rideshare() string
	Destroy(ctx context.Context) error
}

// Server is the proxy side of SSSv1 (docs/wire.md §6.3, §11.2): one link per
// client stream, each fulfilled by an onward stream.
type Server struct {
	// Onward creates the onward streams. Required.
	Onward Onward
	// Logger receives link-level logs (nil: silent).
	Logger *slog.Logger
	// StreamTypeTimeout bounds the wait for STREAMTYPE (0: 3 s).
	StreamTypeTimeout time.Duration
	// ReadBufferSize is each link's decoder buffer (0: 1024 bytes; it grows
	// for larger frames).
	ReadBufferSize int
	// Limits bound what clients can make the server hold (zero value: the
	// defaults). Set before Serve.
	Limits ServerLimits
	// Loop selects how links are read (zero value: LoopAuto, the event
	// loop on Linux). Set before Serve.
	Loop LoopMode
	// Pollers is the number of event-loop goroutines, each with an epoll set (0: 1).
	Pollers int
	// BusyPoll is how long each event-loop goroutine keeps polling its set
	// without sleeping after it found events (evloop.Config.BusyPoll; 0:
	// it sleeps at once). Latency traded for CPU (docs/proxy.md, "Event
	// loop").
	BusyPoll time.Duration

	loop loopState

	nextID  atomic.Uint64
	refused atomic.Uint64
	illegal atomic.Uint64
	live    atomic.Int64
	peak    atomic.Int64 // most links open at once since TakePeakLinks
	highQ   atomic.Int64

	handoffs atomic.Uint64 // event loop → goroutine hand-offs (LoopHandoffs)

	mu       sync.Mutex
	lim      effectiveLimits
	links    map[*link]struct{}
	byUser   map[string]int // open links per Peer.userKey
	byProc   map[string]int // open links per Peer.processKey
	reserved int64          // bytes the open links may queue (MaxQueuedBytes)
	closed   bool
	wg       sync.WaitGroup
	refusals refusalLog
	warns    warnBudget
}

// IllegalTransitions counts onward transitions withheld from clients
// because lws clients would reject them (docs/wire.md §7.3 rule 5; a bug).
func (s *Server) IllegalTransitions() uint64 { return s.illegal.Load() }

// QueueHighWater returns the largest number of bytes any link has had
// queued for its client (frames not yet written; docs/wire.md §7.2): at most
// the link's effective proxy_buflen_rxflow_on_above plus one onward event.
func (s *Server) QueueHighWater() int { return int(s.highQ.Load()) }

func (s *Server) noteQueued(n int) {
	for {
		h := s.highQ.Load()
		if int64(n) <= h || s.highQ.CompareAndSwap(h, int64(n)) {
			return
		}
	}
}

// testHookRxflow, when set by a test, is called (under the link's queue
// lock) each time a link stops (pause) or resumes draining its onward
// stream, with the bytes then queued for the client.
var testHookRxflow func(pause bool, queued int)

// testHookWriteLoop, when set by a test, is called as a link starts a
// writeLoop goroutine.
var testHookWriteLoop func()

// maxBatch bounds the bytes of one write to the client, so that the
// queue drains (and the onward stream resumes) progressively.
const maxBatch = 16 << 10

// LoopHandoffs returns how many times the event loop handed a link it was
// reading inline to a goroutine because a frame might wait (docs/proxy.md,
// "Event loop"); links' ends are not counted.
func (s *Server) LoopHandoffs() uint64 { return s.handoffs.Load() }

// Links returns the number of open links.
func (s *Server) Links() int { return int(s.live.Load()) }

// TakePeakLinks returns the most links open at once since the last call
// (or the start), and starts the next period from the links open now.
func (s *Server) TakePeakLinks() int {
	return int(s.peak.Swap(s.live.Load()))
}

// Refused returns the number of connections and streams refused by a limit
// or the allow-list.
func (s *Server) Refused() uint64 { return s.refused.Load() }

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Serve accepts links on ln until ctx is done or ln fails, then closes ln,
// closes every link (destroying its onward stream) and waits for them. It
// returns nil when ctx ended it, else the accept error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.Onward == nil {
		return errors.New("ss: proxy: Server.Onward is nil")
	}
	if err := s.Limits.Check(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.links == nil {
		s.links = map[*link]struct{}{}
		s.byUser = map[string]int{}
		s.byProc = map[string]int{}
	}
	s.lim = effective(s.Limits)
	s.mu.Unlock()
	s.startLoop()
	defer s.stopLoop()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var err error
	var delay time.Duration
	for {
		c, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil {
				var ne net.Error
				if errors.As(aerr, &ne) && ne.Timeout() {
					continue
				}
				if !errors.Is(aerr, net.ErrClosed) && isTemporary(aerr) {
					delay = min(max(2*delay, 5*time.Millisecond), time.Second)
					time.Sleep(delay)
					continue
				}
				err = aerr
			}
			break
		}
		delay = 0
		s.start(ctx, c)
	}
	ln.Close()
	s.closeLinks()
	s.wg.Wait()
	return err
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) start(ctx context.Context, c net.Conn) {
	peer := peerOf(c)
	l := &link{srv: s, conn: c, id: s.nextID.Add(1), log: s.logger(), peer: peer}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	if why := s.admit(peer); why != "" {
		s.mu.Unlock()
		s.refuse(c, peer, why)
		return
	}
	if lc := s.adopt(c); lc != nil {
		l.conn, l.lc = lc, lc
	}
	s.links[l] = struct{}{}
	s.byUser[peer.userKey()]++
	if k := peer.processKey(); k != "" {
		s.byProc[k]++
	}
	s.wg.Add(1)
	s.mu.Unlock()
	for n := s.live.Add(1); ; {
		if p := s.peak.Load(); n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	go l.run(ctx)
}

// linkDone releases an ended link's place (its goroutine, or the last one
// that served it, calls it).
func (s *Server) linkDone(l *link) {
	s.live.Add(-1)
	s.mu.Lock()
	delete(s.links, l)
	uncount(s.byUser, l.peer.userKey())
	uncount(s.byProc, l.peer.processKey())
	s.reserved -= l.reserved
	s.mu.Unlock()
	s.wg.Done()
}

func uncount(m map[string]int, k string) {
	if k == "" {
		return
	}
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}

// admit checks a new connection against the allow-list and the link
// limits (s.mu held); it returns why it is refused, or "".
func (s *Server) admit(p Peer) string {
	lim := &s.lim
	if lim.allowUID != nil {
		if !p.Cred {
			return "peer has no credentials and an allow-list is set"
		}
		if !lim.allowUID[p.UID] && !lim.allowGID[p.GID] {
			return "peer uid and gid not in the allow-list"
		}
	}
	if lim.maxLinks > 0 && len(s.links) >= lim.maxLinks {
		return "too many links (MaxLinks " + strconv.Itoa(lim.maxLinks) + ")"
	}
	if lim.perUID > 0 && s.byUser[p.userKey()] >= lim.perUID {
		return "too many links from this user (MaxLinksPerUID " + strconv.Itoa(lim.perUID) + ")"
	}
	if k := p.processKey(); k != "" && lim.perPID > 0 && s.byProc[k] >= lim.perPID {
		return "too many links from this process (MaxLinksPerProcess " + strconv.Itoa(lim.perPID) + ")"
	}
	return ""
}

// refuse answers a connection that may not have a link with CREATE_RESULT
// failed (so that the client does not retry at once) and closes it.
func (s *Server) refuse(c net.Conn, p Peer, why string) {
	n := s.refused.Add(1)
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	b, _ := (&CreateResult{Result: ResultFailed}).AppendBinary(nil)
	c.Write(b)
	c.Close()
	s.refusals.log(s.logger(), why, p, n)
}

// reserve takes n bytes of the MaxQueuedBytes budget for l; false when
// they are not available.
func (s *Server) reserve(l *link, n int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lim.maxQueued > 0 && s.reserved+n > s.lim.maxQueued {
		return false
	}
	s.reserved += n
	l.reserved += n
	return true
}

// warnBudget bounds the WARN lines about closed links (malformed input)
// to warnsPerSecond a second, so that a client opening link after link with
// garbage cannot flood the log; the next line logged says how many were
// left out.
type warnBudget struct {
	mu      sync.Mutex
	second  time.Time
	n       int
	skipped int
}

const warnsPerSecond = 20

func (w *warnBudget) allow(now time.Time) (ok bool, skipped int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.second) >= time.Second {
		w.second, w.n = now, 0
	}
	if w.n >= warnsPerSecond {
		w.skipped++
		return false, 0
	}
	w.n++
	skipped, w.skipped = w.skipped, 0
	return true, skipped
}

// refusalLog logs refused connections at WARN, at most one line a second
// (a flood of connections does not flood the log).
type refusalLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (r *refusalLog) log(log *slog.Logger, why string, p Peer, total uint64) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < time.Second {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	r.last = now
	n := r.suppressed
	r.suppressed = 0
	r.mu.Unlock()
	log.Warn("ss: proxy: link refused", "reason", why, "peer", p.String(), "refused_total", total, "not_logged_since_last", n)
}

func (s *Server) closeLinks() {
	s.mu.Lock()
	s.closed = true
	for l := range s.links {
		l.conn.Close()
	}
	s.mu.Unlock()
}

// link is one client connection and its onward stream.
type link struct {
	srv  *Server
	conn net.Conn
	id   uint64
	log  *slog.Logger
	name string // streamtype|v1|pid, for logs
	peer Peer

	reserved int64 // bytes of Server.reserved held (released by start's goroutine)
	clock    *frameClock
	ctl      *control       // reader: made by control() on first use
	mdSet    map[string]int // reader: value length per name the client set
	mdBytes  int            // reader: bytes of those names and values
	txcrLogd bool           // a TXCR_UPDATE has been logged
	frames   int            // reader: frames read (yieldEvery)
	// splitOpen (reader): the client's last TX_PAYLOAD applied was a
	// piece of a split chunk that more pieces follow (joinable).
	splitOpen bool

	os OnwardStream
	// From the OnwardInfo of the onward stream (the rest is used in setup
	// only; kept out of the link, PERFORMANCE.md "Memory per proxied stream").
	proxyBuflen int      // OnwardInfo.ProxyBuflen, DefaultProxyBuflen when unset
	mdNames     []string // OnwardInfo.Metadata
	delivers    bool     // OnwardInfo.Delivers
	own         string   // the streamtype's own name

	closing atomic.Bool // the onward stream is being destroyed: send nothing more

	mdMu  sync.Mutex
	mdVal map[string]string // last value known to the client per declared name

	// tryWrite writes without blocking, for the producer (nil: the
	// writer goroutine writes).
	tryWrite func(p []byte) (int, error)

	ctx     context.Context // Serve's
	lc      parker          // the event loop's connection (nil: the net path)
	dec     *Decoder
	fwdDone chan struct{} // closed once forward ended (or at once with Delivers)

	br      *burstReader
	pending Message // a frame read while joining TX pieces, not yet handled

	segs    []seg       // deliver: the batch's segments
	bufs    net.Buffers // writeLoop: one vectored write
	mark    int         // deliver: start of the open buffer segment
	inPlace int         // deliver: payload bytes held in segs

	fw stateForwarder

	// Onward → client queue (docs/wire.md §7.2), shared by deliver and writeLoop.
	onAbove, offBelow int // effective proxy_buflen_rxflow_on_above/_off_below
	batchCap          int // bytes batched into one write
	qmu               sync.Mutex
	queue             []batch       // batches waiting for the writer (none written yet)
	queued            int           // their bytes, the one being written included
	ready             bool          // CREATE_RESULT is written, or the link failed before: deliver writes nothing before (setReady)
	paused            bool          // queued reached onAbove; not yet below offBelow
	writing           bool          // a writer is active: a writeLoop goroutine, or flushLoop (waiting for room)
	dead              bool          // a write failed or the link ends: discard
	wrErr             bool          // a write failed
	readyWait         chan struct{} // made by a deliver that waits for ready, closed by setReady
	resume, idle      chan struct{} // closed when paused / writing end
}

// closedChan is a closed channel, shared: the fwdDone of every link whose
// onward stream delivers its events (no forwarding goroutine to wait for).
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8192); return &b }}

// close logs why the link closes at WARN: the client broke the protocol
// or the link failed.
func (l *link) close(reason string, err error) { l.closeAt(slog.LevelWarn, reason, err) }

// closeAt logs why the link closes at level: DEBUG for ordinary ends (the
// client closed or sent DESTROYING), INFO for refusals of well-formed
// requests, WARN for protocol violations and failures.
func (l *link) closeAt(level slog.Level, reason string, err error) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	var skipped int
	if level >= slog.LevelWarn {
		var ok bool
		if ok, skipped = l.srv.warns.allow(time.Now()); !ok {
			return
		}
	}
	attrs := []any{"link", l.id, "stream", l.name, "peer", l.peer.String(), "reason", reason}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	if skipped > 0 {
		attrs = append(attrs, "similar_not_logged", skipped)
	}
	l.log.Log(context.Background(), level, "ss: proxy: closing link", attrs...)
}

func (l *link) run(ctx context.Context) {
	l.ctx = ctx
	if !l.setup(ctx) {
		if l.ctl != nil {
			l.ctl.stop()
		}
		l.conn.Close()
		l.br.release()
		l.srv.linkDone(l)
		return
	}
	l.serve()
}

// setup reads STREAMTYPE, creates the onward stream and answers
// CREATE_RESULT; false when the link ends there (the caller closes it).
func (l *link) setup(ctx context.Context) bool {
	// Borrow mode: no allocation per frame; the onward stream copies a TX
	// payload into its own (pooled) buffer. The burst reader saves system
	// calls while data streams in, without holding a buffer on idle links.
	l.clock = &frameClock{conn: l.conn}
	br := &burstReader{r: l.clock}
	l.br = br
	dec := NewDecoder(br, ClientToProxy, Limits{})
	l.dec = dec
	dec.SetBorrow(true)
	n := l.srv.ReadBufferSize
	if n <= 0 {
		n = 1024
	}
	dec.SetBufferSize(n)
	wait := l.srv.StreamTypeTimeout
	if wait <= 0 {
		wait = DefaultStreamTypeTimeout
	}
	l.conn.SetReadDeadline(time.Now().Add(wait))
	msg, err := dec.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			l.closeAt(slog.LevelDebug, "client closed the link before STREAMTYPE", nil)
		} else {
			l.close("no valid STREAMTYPE", err)
		}
		return false
	}
	stm, ok := msg.(*StreamType)
	if !ok {
		l.close("first frame is "+msg.Code().String()+", not STREAMTYPE", nil)
		return false
	}
	if l.badStreamtype(stm.Name) {
		return false
	}
	l.conn.SetReadDeadline(time.Time{})
	l.frameDone(dec)
	l.name = stm.Name + "|v1|" + strconv.FormatUint(uint64(stm.PID), 10)
	switch {
	case l.lc != nil:
		l.tryWrite = l.lc.TryWrite
		l.lc.SetWriteHandler(l.flushLoop)
	case nonBlockingWrites:
		if sc, ok := l.conn.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				l.tryWrite = func(p []byte) (int, error) { return writeNow(rc, p) }
			}
		}
	}
	os, info, err := l.srv.Onward.Create(ctx, CreateRequest{Streamtype: stm.Name, Credit: stm.Credit, PID: stm.PID, Deliver: l.deliver, Poller: l.poller()})
	if err != nil {
		b, _ := (&CreateResult{Result: ResultFailed}).AppendBinary(nil)
		l.conn.Write(b)
		l.closeAt(slog.LevelInfo, "create failed", err)
		return false
	}
	l.os, l.own = os, stm.Name
	l.proxyBuflen, l.mdNames, l.delivers = info.ProxyBuflen, info.Metadata, info.Delivers
	l.fw.early = info.EarlyConnected
	if l.proxyBuflen <= 0 {
		l.proxyBuflen = DefaultProxyBuflen
	}
	l.onAbove = info.RxflowOnAbove
	if l.onAbove <= 0 {
		l.onAbove = l.proxyBuflen
	}
	if !l.srv.reserve(l, int64(l.proxyBuflen+l.onAbove)) {
		b, _ := (&CreateResult{Result: ResultFailed}).AppendBinary(nil)
		l.conn.Write(b)
		n := l.srv.refused.Add(1)
		l.srv.refusals.log(l.log, "queued-bytes budget exhausted (MaxQueuedBytes "+strconv.FormatInt(l.srv.lim.maxQueued, 10)+")", l.peer, n)
		l.destroy()
		l.setReady()
		l.drain()
		return false
	}
	lim := l.srv.lim
	l.offBelow = info.RxflowOffBelow
	if l.offBelow <= 0 || l.offBelow > l.onAbove {
		l.offBelow = max(l.onAbove/2, 1)
	}
	l.batchCap = min(l.onAbove, maxBatch)
	names := info.Rideshares
	if len(names) == 0 {
		names = []string{stm.Name}
	}
	fit, dropped := FitRideshares(names)
	if len(dropped) > 0 {
		l.log.Warn("ss: proxy: rideshare names left out of CREATE_RESULT", "link", l.id, "stream", l.name, "dropped", dropped)
	}
	b, err := (&CreateResult{Result: ResultOK, ClientBuflen: info.ClientBuflen, Rideshares: fit}).AppendBinary(nil)
	if err == nil {
		_, err = l.conn.Write(b)
	}
	if err != nil {
		l.close("writing CREATE_RESULT", err)
		l.destroy()
		l.setReady()
		l.drain()
		return false
	}
	l.log.Debug("ss: proxy: link created", "link", l.id, "stream", l.name, "peer", l.peer.String())
	dec.SetLimits(Limits{MaxTxPayload: l.proxyBuflen, MaxMetadataValue: lim.maxMDBytes})
	l.clock.timeout = lim.frameTimeout
	l.setReady()
	if info.Delivers {
		l.fwdDone = closedChan
	} else {
		l.fwdDone = make(chan struct{})
		go func() {
			defer close(l.fwdDone)
			l.forward()
		}()
	}
	if l.lc != nil {
		// From here on the link is read without blocking: by this
		// goroutine until the socket is drained, then parked in the
		// event loop, which reads it inline (step) when it is readable.
		l.lc.SetHandlers(l.step, l.serve)
		l.lc.SetNonblockingReads(true)
	}
	return true
}

// readResult is how read stopped.
type readResult int

const (
	readEnd   readResult = iota // the link ends: teardown
	readPark                    // the socket is drained (ErrWouldBlock): park it
	readYield                   // inline: frameYield frames read, let other links run
	readBlock                   // inline: the next step may wait (l.pending holds its frame)
)

// serve reads the link on this goroutine until it ends (teardown) or, in
// the event loop, until the socket is drained: then the link is parked and
// the goroutine exits (an idle link has none).
func (l *link) serve() {
	for {
		switch l.read(l.ctx, l.dec, false) {
		case readPark:
			if l.lc.Park() {
				return
			}
		case readEnd:
			l.teardown()
			return
		}
	}
}

// step reads a parked link inline on the event loop's goroutine (the
// readable handler): frames that can be applied without waiting are;
// anything that may wait (a full transmit queue, the control rate, joining
// a split chunk) and the link's end go to a goroutine.
func (l *link) step() {
	switch l.read(l.ctx, l.dec, true) {
	case readPark:
		return
	case readYield:
		if l.dec.Buffered()+l.br.buffered() == 0 {
			return // the socket still has data: the poller comes back
		}
	case readEnd:
		l.lc.Unpark()
		go l.teardown()
		return
	}
	l.lc.Unpark()
	l.srv.handoffs.Add(1)
	go l.serve()
}

// teardown ends a link: destroys its onward stream, closes the client
// connection and releases the link's place in the server.
func (l *link) teardown() {
	if l.ctl != nil {
		l.ctl.stop()
	}
	l.destroy()
	l.conn.Close()
	<-l.fwdDone
	if l.delivers {
		l.drain() // until DESTROYING has been delivered
	}
	l.br.release()
	l.srv.linkDone(l)
}

// destroy destroys the onward stream; no frame is sent afterwards.
func (l *link) destroy() {
	l.closing.Store(true)
	// Stop waiting for the client: forward discards from now on, so the
	// onward stream's events drain and Destroy completes.
	l.qmu.Lock()
	l.dead = true
	if l.resume != nil {
		close(l.resume)
		l.resume = nil
	}
	l.qmu.Unlock()
	// Nothing more is written: a write blocked on a client that stopped
	// reading must not hold the delivery of DESTROYING.
	l.conn.SetWriteDeadline(time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l.os.Destroy(ctx)
}

// drain reads the onward events until the channel closes (with
// OnwardInfo.Delivers: waits until DESTROYING was delivered).
func (l *link) drain() {
	for range l.os.Events() {
	}
}

// read applies client frames to the onward stream until the link ends
// or, on a non-blocking connection (the event loop), until it is drained.
// inline: it runs on the event loop's goroutine and must not wait; a frame
// whose handling may wait is kept in l.pending (readBlock).
func (l *link) read(ctx context.Context, dec *Decoder, inline bool) readResult {
	for n := 0; ; n++ {
		var msg Message
		var err error
		if l.pending != nil {
			msg, l.pending = l.pending, nil
		} else {
			if inline && n >= frameYield {
				return readYield
			}
			msg, err = dec.Next()
			if err == evloop.ErrWouldBlock {
				return readPark // a partial frame stays buffered, its clock running
			}
			l.frameDone(dec)
		}
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				l.closeAt(slog.LevelDebug, "client closed the link", nil)
			case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), l.writeFailed():
				// The client went away (a write to it failed, or it reset).
				l.closeAt(slog.LevelDebug, "client closed the link", err)
			case l.closing.Load():
				l.closeAt(slog.LevelDebug, "onward stream ended", nil)
			default:
				var fe *FrameError
				var ne net.Error
				if errors.As(err, &fe) {
					l.close("malformed frame", err)
				} else if errors.As(err, &ne) && ne.Timeout() {
					l.close("frame not complete within "+l.clock.timeout.String()+" of its start", err)
				} else {
					l.close("read error", err)
				}
			}
			return readEnd
		}
		if !inline {
			l.yieldEvery()
		}
		switch m := msg.(type) {
		case *StreamType:
			l.close("second STREAMTYPE", nil)
			return readEnd
		case *Destroying:
			l.closeAt(slog.LevelDebug, "client sent DESTROYING", nil)
			return readEnd
		case *OnwardConnect:
			// Control frames are coalesced (control.go): a flood of them
			// costs no memory and reaches the onward stream at ControlRate.
			err = l.control().request(func(p *pendingControl) { p.connect = true })
		case *TxPayload:
			if len(m.Payload) > l.proxyBuflen {
				l.close("TX_PAYLOAD larger than proxy_buflen", nil)
				return readEnd
			}
			empty := len(m.Payload) == 0
			if empty && m.Flags&(event.SOM|event.EOM|event.RelatedStart|event.RelatedEnd) == 0 {
				continue // carries nothing
			}
			// An empty chunk with flags costs a token (nothing else
			// bounds them); a payload waits for pending control first.
			// Without control state (no control frame yet) nothing is
			// pending and only an empty chunk needs a token.
			switch {
			case l.ctl == nil && !empty:
			case inline:
				var ok bool
				if ok, err = l.control().trySpend(empty); !ok {
					l.pending = Clone(m)
					return readBlock
				}
			default:
				err = l.control().spend(ctx, empty)
			}
			if err == nil {
				if inline {
					var ok bool
					if ok, err = l.tryTx(dec, m); !ok {
						l.pending = Clone(m)
						return readBlock
					}
				} else {
					err = l.tx(ctx, dec, m)
				}
			}
		case *TxMetadata:
			if reason, err := l.setMetadata(m); reason != "" {
				l.close(reason, err)
				return readEnd
			}
		case *TxCredit:
			// docs/wire.md §3.6 asks for a WINDOW_UPDATE on h2/h3 onward streams;
			// Go's HTTP/2 and HTTP/3 clients manage their receive windows
			// themselves and offer no per-stream window update, so the
			// grant is dropped (see the package doc, "Tx credit"). Logged
			// once per link.
			if !l.txcrLogd {
				l.txcrLogd = true
				l.log.Debug("ss: proxy: TXCR_UPDATE ignored (per-stream window updates are not available)",
					"link", l.id, "stream", l.name, "delta", m.Delta)
			}
		case *TimeoutUpdate:
			ms := m.Millis
			err = l.control().request(func(p *pendingControl) { p.timeout, p.millis = true, ms })
		case *PayloadLengthHint:
			n := int64(m.Length)
			err = l.control().request(func(p *pendingControl) { p.txLen, p.n = true, n })
		case *Perf:
			// tolerated from a client, skipped
		default:
			l.close("unexpected "+msg.Code().String(), nil)
			return readEnd
		}
		if err == evloop.ErrWouldBlock {
			return readPark // tx joined what was there
		}
		if err != nil {
			l.close("onward stream refused "+msg.Code().String(), err)
			return readEnd
		}
	}
}

// control returns the link's control state (control.go), made on the
// first control frame or empty flagged chunk: most links never send one,
// and a bucket made later is as full as one made at setup and left
// alone (tokens are capped at the burst). Only the reader calls it.
func (l *link) control() *control {
	if l.ctl == nil {
		l.ctl = newControl(l.os, l.srv.lim.controlRate, l.srv.lim.controlBurst)
	}
	return l.ctl
}

// yieldEvery lets other goroutines run after every frameYield frames: a
// link flooding frames that cost nothing to apply (control frames,
// coalesced; empty payloads; PERF) never waits for input, and without this
// each flooding reader would hold its thread for a whole scheduler time
// slice, delaying every other link's round trip by the number of floods
// times 10 ms.
func (l *link) yieldEvery() {
	if l.frames++; l.frames%frameYield == 0 {
		runtime.Gosched()
	}
}

const frameYield = 256

// frameDone tells the frame clock a frame is complete.
func (l *link) frameDone(dec *Decoder) {
	l.clock.frameDone(dec.Buffered()+l.br.buffered() > 0)
}

// setMetadata applies a client's METADATA within MaxMetadata and
// MaxMetadataBytes; it returns why the link must close, or "". Only the
// reader calls it (mdSet and mdBytes are its own).
func (l *link) setMetadata(m *TxMetadata) (string, error) {
	lim := l.srv.lim
	old, known := l.mdSet[m.Name]
	size := l.mdBytes + len(m.Value)
	if known {
		size -= old
	} else {
		size += len(m.Name)
	}
	if !known && lim.maxMD > 0 && len(l.mdSet) >= lim.maxMD {
		return "more than " + strconv.Itoa(lim.maxMD) + " metadata names (MaxMetadata)", nil
	}
	if lim.maxMDBytes > 0 && size > lim.maxMDBytes {
		return "metadata over " + strconv.Itoa(lim.maxMDBytes) + " bytes (MaxMetadataBytes)", nil
	}
	if err := CheckName("metadata", m.Name); err != nil {
		return "METADATA name refused", err
	}
	v := string(m.Value)
	if err := l.os.SetMetadata(m.Name, v); err != nil {
		return "METADATA rejected", err
	}
	if l.mdSet == nil {
		l.mdSet = map[string]int{}
	}
	l.mdSet[m.Name] = len(v)
	l.mdBytes = size
	l.mdMu.Lock()
	if l.mdVal == nil {
		l.mdVal = map[string]string{}
	}
	l.mdVal[m.Name] = v
	l.mdMu.Unlock()
	return "", nil
}

var joinPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// tx queues a TX_PAYLOAD for the onward stream (which copies it). The
// pieces of one chunk that the client split into several frames
// (RELATED_START … RELATED_END, docs/wire.md §3.4) are joined again while the
// following pieces are already buffered, so that the onward stream gets
// fewer, larger chunks (and its pooled buffers).
func (l *link) tx(ctx context.Context, dec *Decoder, m *TxPayload) error {
	flags := m.Flags &^ (event.RideshareFlag | event.PollFlag)
	buffered := func() int { return dec.Buffered() + l.br.buffered() }
	if !l.joinable(flags) || buffered() < HeaderLen+PayloadHeaderLen {
		l.noteSplit(flags)
		return l.os.Write(ctx, m.Payload, flags)
	}
	l.splitOpen = true
	jp := joinPool.Get().(*[]byte)
	defer func() {
		if cap(*jp) <= 64<<10 {
			*jp = (*jp)[:0]
			joinPool.Put(jp)
		}
	}()
	join := append((*jp)[:0], m.Payload...)
	for buffered() >= HeaderLen+PayloadHeaderLen && len(join) < l.proxyBuflen {
		msg, err := dec.Next()
		if err != nil {
			// ErrWouldBlock (the event loop): the next piece is not
			// here yet; what was joined goes now, the rest as it comes.
			*jp = join
			if werr := l.os.Write(ctx, join, flags); werr != nil && err == evloop.ErrWouldBlock {
				return werr
			}
			return err
		}
		l.frameDone(dec)
		n, ok := msg.(*TxPayload)
		var nf event.Flags
		if ok {
			nf = n.Flags &^ (event.RideshareFlag | event.PollFlag)
		}
		if !ok || nf&(event.SOM|event.RelatedStart) != 0 {
			// Not a continuation: send what was joined, then handle msg.
			*jp = join
			if err := l.os.Write(ctx, join, flags); err != nil {
				return err
			}
			l.pending = Clone(msg)
			return nil
		}
		join = append(join, n.Payload...)
		flags |= nf & (event.EOM | event.RelatedEnd)
		if nf&(event.EOM|event.RelatedEnd) != 0 {
			break
		}
	}
	*jp = join
	l.noteSplit(flags)
	if flags&(event.RelatedStart|event.RelatedEnd) == event.RelatedStart|event.RelatedEnd {
		flags &^= event.RelatedStart | event.RelatedEnd // the chunk is whole again
	}
	return l.os.Write(ctx, join, flags)
}

// joinable reports whether a TX_PAYLOAD with flags is a piece of a chunk
// the client split (docs/wire.md §3.4) that more pieces follow: the first
// (RELATED_START) or, while such a chunk is open, a middle one (a piece the
// link could not join with the ones before, as they had not arrived yet).
func (l *link) joinable(flags event.Flags) bool {
	if flags&(event.RelatedEnd|event.EOM) != 0 {
		return false
	}
	return flags&event.RelatedStart != 0 || l.splitOpen && flags&event.SOM == 0
}

// noteSplit records whether a split chunk is open after the client's
// piece with flags was applied (joinable reads it).
func (l *link) noteSplit(flags event.Flags) {
	switch {
	case flags&(event.RelatedEnd|event.EOM) != 0:
		l.splitOpen = false
	case flags&event.RelatedStart != 0:
		l.splitOpen = true
	case flags&event.SOM != 0:
		l.splitOpen = false
	}
}

// tryWriter is an OnwardStream that can queue payload without waiting
// (the event loop's inline path).
type tryWriter interface {
	TryWrite(p []byte, flags event.Flags) (bool, error)
}

// tryTx is tx without waiting, for the event loop: false, having queued
// nothing, when the onward stream's transmit queue is full, when it cannot
// tell (no TryWrite), or when the chunk's following pieces are buffered to
// be joined; tx, on a goroutine, then does it.
func (l *link) tryTx(dec *Decoder, m *TxPayload) (bool, error) {
	flags := m.Flags &^ (event.RideshareFlag | event.PollFlag)
	if l.joinable(flags) && dec.Buffered()+l.br.buffered() >= HeaderLen+PayloadHeaderLen {
		return false, nil
	}
	tw, ok := l.os.(tryWriter)
	if !ok {
		return false, nil
	}
	ok, err := tw.TryWrite(m.Payload, flags)
	if ok {
		l.noteSplit(flags)
	}
	return ok, err
}

// deliver turns one onward event into frames and hands them to the
// client (internal/stream Config.Deliver): written at once when nothing
// waits before them and the socket takes them, else queued for the writer
// (writeLoop). The stream calls it one event at a time, in order; wait
// false comes from the goroutine that received the payload, which must not
// block: the event is refused (false) while the queue is paused or the
// link not ready, and comes again with wait true.
//
// Back-pressure with hysteresis (docs/wire.md §7.2): once the bytes queued
// for the client reach on_above, events are no longer taken (so the onward
// stream, its receive budget full, stops reading its peer) until the
// writer has brought them below off_below. One event may overshoot
// on_above: the queue never holds more than on_above plus one event's
// frames.
func (l *link) deliver(ev event.Event, wait bool) bool {
	if wait {
		l.waitReady()
		if _, alive := l.waitRoom(); !alive {
			ev.Release()
			l.ended(ev)
			return true // discarded: nothing more is written
		}
	} else {
		l.qmu.Lock()
		stop := !l.ready || l.paused || l.dead
		l.qmu.Unlock()
		if stop {
			return false
		}
	}
	bp := bufPool.Get().(*[]byte)
	b := batch{bp: bp}
	l.segs, l.mark, l.inPlace = l.segs[:0], 0, 0
	b.buf = l.appendEvent((*bp)[:0], ev)
	if l.mark < len(b.buf) && len(l.segs) > 0 {
		l.segs = append(l.segs, seg{off: l.mark, end: len(b.buf)})
	}
	if len(l.segs) > 0 {
		b.segs = append([]seg(nil), l.segs...)
		clear(l.segs)
		if cap(l.segs) > 64 {
			l.segs = nil
		}
		b.release = ev // written in place: handed back once written
	} else {
		ev.Release() // copied into buf
	}
	b.n = l.inPlace + len(b.buf)
	l.enqueue(b)
	l.ended(ev)
	return true
}

// setReady lets deliver write: CREATE_RESULT is written, or the link
// failed before.
func (l *link) setReady() {
	l.qmu.Lock()
	l.ready = true
	if l.readyWait != nil {
		close(l.readyWait)
		l.readyWait = nil
	}
	l.qmu.Unlock()
}

// waitReady waits until setReady (a channel is made only for a stream
// that delivers before its link is ready, not for every link).
func (l *link) waitReady() {
	l.qmu.Lock()
	for !l.ready {
		if l.readyWait == nil {
			l.readyWait = make(chan struct{})
		}
		w := l.readyWait
		l.qmu.Unlock()
		<-w
		l.qmu.Lock()
	}
	l.qmu.Unlock()
}

// ended closes the link after DESTROYING, once what was queued before it
// is written.
func (l *link) ended(ev event.Event) {
	if ev.Kind == event.StateEvent && ev.State == event.Destroying {
		l.flushed()
		l.conn.Close()
	}
}

// forward hands the events of an onward stream that does not take
// CreateRequest.Deliver (its Events channel) to deliver.
func (l *link) forward() {
	for ev := range l.os.Events() {
		l.deliver(ev, true)
	}
	l.flushed()
	l.conn.Close()
}

// batch is one write to the client: buf alone, or buf's segments and
// in-place payloads (segs) in one vectored write.
type batch struct {
	bp   *[]byte
	buf  []byte
	segs []seg
	n    int // bytes
	off  int // bytes already written
	// release is the event whose payload segs write in place: its buffer
	// goes back to the pool (event.Event.Release) once written.
	release event.Event
}

// waitRoom blocks while the bytes queued for the client are at or above
// on_above and have not yet fallen below off_below, then returns the room
// left below on_above. It returns false once the link is dead (nothing will
// be written any more).
func (l *link) waitRoom() (int, bool) {
	l.qmu.Lock()
	for l.paused && !l.dead {
		if l.resume == nil {
			l.resume = make(chan struct{})
		}
		r := l.resume
		l.qmu.Unlock()
		<-r
		l.qmu.Lock()
	}
	dead, room := l.dead, l.onAbove-l.queued
	l.qmu.Unlock()
	return room, !dead
}

// enqueue writes a batch at once when nothing is queued or being written
// and the socket takes it without blocking; else (or what is left of it)
// it joins the queue, and an idle writer is started: in the event loop,
// the loop is asked to call flushLoop once the socket has room (no
// goroutine); else a writeLoop goroutine. Small batches queued behind the
// writer are joined into one write.
func (l *link) enqueue(b batch) {
	l.qmu.Lock()
	if l.dead || l.closing.Load() {
		l.qmu.Unlock()
		l.recycle(&b)
		return
	}
	if !l.writing && len(l.queue) == 0 && l.tryWrite != nil && (len(b.segs) == 0 || l.lc != nil) {
		l.srv.noteQueued(b.n)
		err := l.writeSome(&b)
		if err != nil {
			l.dead, l.wrErr = true, true
			l.conn.Close()
		}
		if err != nil || b.off == b.n {
			l.qmu.Unlock()
			l.recycle(&b)
			return
		}
	}
	joined := false
	if k := len(l.queue); k > 0 && len(b.segs) == 0 {
		last := &l.queue[k-1]
		if len(last.segs) == 0 && last.off == 0 && len(last.buf)+len(b.buf) <= l.batchCap {
			last.buf = append(last.buf, b.buf...)
			last.n += b.n
			joined = true
		}
	}
	if !joined {
		l.queue = append(l.queue, b)
	}
	l.queued += b.n
	l.srv.noteQueued(l.queued)
	if l.queued >= l.onAbove && !l.paused {
		l.paused = true
		if testHookRxflow != nil {
			testHookRxflow(true, l.queued)
		}
	}
	start := !l.writing
	l.writing = true
	if start && l.lc != nil && l.lc.WaitWritable() {
		start = false // flushLoop writes, from the event loop
	}
	l.qmu.Unlock()
	if joined {
		l.recycle(&b)
	}
	if start {
		l.startWriteLoop()
	}
}

// startWriteLoop starts a writeLoop goroutine.
func (l *link) startWriteLoop() {
	if testHookWriteLoop != nil {
		testHookWriteLoop()
	}
	go l.writeLoop()
}

// writeSome writes what the socket takes at once of what is left of b
// (l.qmu held; l.tryWrite is set), advancing b.off.
func (l *link) writeSome(b *batch) error {
	var n int
	var err error
	if len(b.segs) == 0 {
		n, err = l.tryWrite(b.buf[b.off:])
	} else {
		bufs := l.iovecs(b)
		n, err = l.lc.TryWritev(bufs)
		l.doneIovecs(bufs)
	}
	b.off += n
	return err
}

// flushLoop is the write handler of a link in the event loop: called on
// the loop's goroutine once the client socket has room (or on a goroutine
// of its own when the connection closed or its write deadline passed
// meanwhile), it writes the queued batches in order without blocking.
// When the socket is full again it asks the loop for the next call and
// returns; once the queue is empty the writer is idle. Back-pressure is
// writeLoop's: the queue pauses deliver at on_above and resumes it below
// off_below.
func (l *link) flushLoop() {
	var done []batch
	l.qmu.Lock()
	for len(l.queue) > 0 {
		b := &l.queue[0]
		if !l.dead && !l.closing.Load() {
			if err := l.writeSome(b); err != nil {
				l.dead, l.wrErr = true, true
				l.conn.Close()
			} else if b.off < b.n {
				if l.lc.WaitWritable() {
					l.qmu.Unlock()
					l.recycleAll(done)
					return
				}
				// Closed, or the write deadline passed: writeLoop
				// writes (and fails) with the usual errors.
				l.qmu.Unlock()
				l.recycleAll(done)
				l.startWriteLoop()
				return
			}
		}
		done = append(done, *b)
		l.queued -= b.n
		l.queue[0] = batch{}
		l.queue = l.queue[1:]
		l.unpauseLocked()
	}
	l.idleLocked()
	l.qmu.Unlock()
	l.recycleAll(done)
}

// recycleAll recycles the batches written or discarded.
func (l *link) recycleAll(bs []batch) {
	for i := range bs {
		l.recycle(&bs[i])
	}
}

// unpauseLocked resumes deliver once the queue fell below off_below (or
// the link is dead).
func (l *link) unpauseLocked() {
	if l.paused && (l.dead || l.queued < l.offBelow) {
		l.paused = false
		if testHookRxflow != nil {
			testHookRxflow(false, l.queued)
		}
		if l.resume != nil {
			close(l.resume)
			l.resume = nil
		}
	}
}

// idleLocked marks the writer idle, the queue being empty.
func (l *link) idleLocked() {
	l.writing = false
	if l.idle != nil {
		close(l.idle)
		l.idle = nil
	}
	if cap(l.queue) > 16 {
		l.queue = nil
	}
}

// writeFailed reports whether a write to the client failed (the writer
// then closed the connection).
func (l *link) writeFailed() bool {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	return l.wrErr
}

// flushed waits until the writer has written (or discarded) every batch.
func (l *link) flushed() {
	l.qmu.Lock()
	for l.writing {
		if l.idle == nil {
			l.idle = make(chan struct{})
		}
		c := l.idle
		l.qmu.Unlock()
		<-c
		l.qmu.Lock()
	}
	l.qmu.Unlock()
}

// writeLoop writes the queued batches in order and exits when the queue is
// empty (so an idle link has no writer goroutine).
func (l *link) writeLoop() {
	for {
		l.qmu.Lock()
		if len(l.queue) == 0 {
			l.idleLocked()
			l.qmu.Unlock()
			return
		}
		b := l.queue[0]
		l.queue[0] = batch{}
		l.queue = l.queue[1:]
		dead := l.dead || l.closing.Load()
		l.qmu.Unlock()
		var err error
		if !dead {
			err = l.write(&b)
		}
		l.recycle(&b)
		l.qmu.Lock()
		l.queued -= b.n
		if err != nil && !l.dead {
			l.dead, l.wrErr = true, true
			l.conn.Close()
		}
		l.unpauseLocked()
		l.qmu.Unlock()
	}
}

func (l *link) recycle(b *batch) {
	b.release.Release()
	b.release = event.Event{}
	clear(b.segs)
	buf := b.buf
	if cap(buf) > 256<<10 {
		buf = nil // do not keep huge buffers in the pool
	}
	*b.bp = buf[:0]
	bufPool.Put(b.bp)
	b.bp, b.buf, b.segs = nil, nil, nil
}

// seg is one piece of a batched write: buf[off:end], or a payload written
// in place (p != nil).
type seg struct {
	off, end int
	p        []byte
}

// largePayload is the size from which an rx payload is written in place
// (vectored write) instead of being copied into the batch buffer.
const largePayload = 2048

// appendLarge ends the current buffer segment (the frame header just
// appended) and adds p as its own segment.
func (l *link) appendLarge(buf, p []byte) {
	l.segs = append(l.segs, seg{off: l.mark, end: len(buf)}, seg{p: p})
	l.mark = len(buf)
	l.inPlace += len(p)
}

// write writes what is left of one batch (only ever called by writeLoop).
func (l *link) write(b *batch) error {
	if len(b.segs) == 0 {
		if len(b.buf) == b.off {
			return nil
		}
		_, err := l.conn.Write(b.buf[b.off:])
		return err
	}
	bufs := l.iovecs(b)
	keep := bufs
	_, err := bufs.WriteTo(l.conn)
	l.doneIovecs(keep)
	return err
}

// iovecs returns the pieces of batch b (with segments) not yet written,
// in l.bufs (one writer at a time uses it: writeLoop, or enqueue and
// flushLoop under l.qmu; give it back with doneIovecs).
func (l *link) iovecs(b *batch) net.Buffers {
	bufs := l.bufs[:0]
	skip := b.off
	for _, sg := range b.segs {
		p := sg.p
		if p == nil {
			p = b.buf[sg.off:sg.end]
		}
		if skip >= len(p) {
			skip -= len(p)
			continue
		}
		bufs = append(bufs, p[skip:])
		skip = 0
	}
	return bufs
}

// doneIovecs gives back the slice iovecs returned.
func (l *link) doneIovecs(bufs net.Buffers) {
	clear(bufs)
	l.bufs = bufs[:0]
	if cap(l.bufs) > 64 {
		l.bufs = nil
	}
}

var monoStart = time.Now()

func monoUS() uint64 { return uint64(time.Since(monoStart).Microseconds()) }

// appendEvent appends the frames for one onward event.
func (l *link) appendEvent(b []byte, ev event.Event) []byte {
	if ev.Kind == event.StateEvent {
		if len(l.mdNames) > 0 && ev.State != event.Destroying {
			b = l.appendMetadata(b)
		}
		var room [4]event.State
		states, withheld := l.fw.forward(room[:0], ev.State)
		if withheld {
			n := l.srv.illegal.Add(1)
			l.log.Error("ss: proxy: transition not forwarded (lws clients reject it)", "link", l.id,
				"stream", l.name, "from", l.fw.last.String(), "to", ev.State.String(), "count", n)
		}
		for _, st := range states {
			ack := ev.Ack
			if st != ev.State && st == event.Poll {
				ack = 0
			}
			b, _ = (&ConnState{State: st, Ack: ack}).AppendBinary(b)
		}
		return b
	}
	if ev.Flags&event.PerfJSON != 0 {
		if len(ev.Payload) > 0 {
			p := ev.Payload
			if len(p) > MaxBody {
				p = p[:MaxBody]
			}
			b, _ = (&Perf{JSON: p}).AppendBinary(b)
		}
		return b
	}
	m := RxPayload{Flags: ev.Flags & (event.SOM | event.EOM | event.RelatedStart | event.RelatedEnd), TimeUS: monoUS()}
	if rs := l.os.Rideshare(); rs != l.own && rs != "" && len(rs) <= MaxRideshareName {
		m.Rideshare = rs
	}
	max := MaxPayload
	if m.Rideshare != "" {
		max -= 1 + len(m.Rideshare)
	}
	p := ev.Payload
	first := true
	for {
		piece := p
		if len(piece) > max {
			piece = p[:max]
		}
		p = p[len(piece):]
		m.Flags = ev.Flags & (event.RelatedStart | event.RelatedEnd)
		if first && ev.Flags&event.SOM != 0 {
			m.Flags |= event.SOM
		}
		if len(p) == 0 && ev.Flags&event.EOM != 0 {
			m.Flags |= event.EOM
		}
		m.Payload = piece
		if len(piece) >= largePayload {
			b, _ = m.AppendHeader(b)
			l.appendLarge(b, piece)
		} else {
			b, _ = m.AppendBinary(b)
		}
		first = false
		if len(p) == 0 {
			return b
		}
	}
}

// appendMetadata appends METADATA frames for declared values the onward
// stream captured since the client last knew them (docs/wire.md §4.4: before the
// state that follows the response headers).
func (l *link) appendMetadata(b []byte) []byte {
	l.mdMu.Lock()
	defer l.mdMu.Unlock()
	for _, name := range l.mdNames {
		v, ok := l.os.Metadata(name)
		if !ok || v == "" {
			continue
		}
		if old, known := l.mdVal[name]; known && old == v {
			continue
		}
		if l.mdVal == nil {
			l.mdVal = map[string]string{}
		}
		l.mdVal[name] = v
		nb, err := (&RxMetadata{Name: name, Value: []byte(v)}).AppendBinary(b)
		if err != nil {
			l.log.Warn("ss: proxy: metadata not forwarded", "link", l.id, "stream", l.name, "name", name, "err", err)
			continue
		}
		b = nb
	}
	return b
}
