package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// Client defaults (docs/wire.md §7.4).
const (
	// DefaultRetryInterval is the client's link retry interval.
	DefaultRetryInterval = time.Second
	// DefaultCreateTimeout bounds the wait for CREATE_RESULT.
	DefaultCreateTimeout = 3 * time.Second
	// DefaultMaxTxFrame is the largest TX_PAYLOAD payload the client sends
	// in one frame (the lws client's default).
	DefaultMaxTxFrame = 4061
)

// Client errors.
var (
	// ErrStreamTypeName: the streamtype name cannot travel in STREAMTYPE
	// (1..31 bytes).
	ErrStreamTypeName = errors.New("ss: proxy: streamtype name must be 1..31 bytes")
	// ErrMetadata: the metadata item cannot travel in a METADATA frame to an
	// lws proxy (name 1..30 bytes, value not empty; docs/streams.md §9.2).
	ErrMetadata = errors.New("ss: proxy: metadata cannot be proxied")
)

// Local is the application-side stream a ClientStream drives
// (*stream.Remote implements it).
type Local interface {
	// State reports a state and its cause (nil when none). The stream
	// decides it (checks it, makes it current) in order with what was
	// reported before; the driver never reads the stream's state back.
	State(st event.State, ack uint32, err error)
	// LinkEnded reports that the link ended (asked: by the application's
	// Disconnect): the stream emits DISCONNECTED with cause if it was
	// connected, or, when asked, if an attempt was under way.
	LinkEnded(asked bool, cause error)
	Rx(ctx context.Context, data []byte, flags event.Flags) error
	// WaitRoom waits while the application's queue is full of states.
	WaitRoom(ctx context.Context) error
	TakeTx(dst []transport.Chunk) []transport.Chunk
	NextTx(ctx context.Context, dst []transport.Chunk) ([]transport.Chunk, error)
	ReleaseTx(chunks []transport.Chunk)
	PeekTx() (lenHint int64, pending bool, headLen int64)
	ArmTx() bool
	SetRideshare(name string)
	Go(f func())
	Logger() *slog.Logger
	Since() time.Duration
}

// ClientConfig configures proxied streams.
type ClientConfig struct {
	// Address is the proxy (ParseAddress forms; "" is DefaultAddress).
	Address string
	// DialContext opens the link (nil: net.Dialer).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// RetryInterval is the link retry interval (0: 1 s).
	RetryInterval time.Duration
	// CreateTimeout bounds the wait for CREATE_RESULT (0: 3 s).
	CreateTimeout time.Duration
	// MaxTxFrame is the largest payload per TX_PAYLOAD frame (0: 4061; at
	// most MaxPayload).
	MaxTxFrame int
	// PID is sent in STREAMTYPE (0: os.Getpid()).
	PID uint32
	// Credit is the initial receive window offered to the onward peer (0:
	// DefaultCredit).
	Credit int32
}

// Client opens proxied streams' links (docs/wire.md §11.1).
type Client struct {
	cfg           ClientConfig
	network, addr string
}

// NewClient checks cfg and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	network, addr, err := ParseAddress(cfg.Address)
	if err != nil {
		return nil, err
	}
	if cfg.DialContext == nil {
		d := &net.Dialer{}
		cfg.DialContext = d.DialContext
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.CreateTimeout <= 0 {
		cfg.CreateTimeout = DefaultCreateTimeout
	}
	if cfg.MaxTxFrame <= 0 {
		cfg.MaxTxFrame = DefaultMaxTxFrame
	}
	cfg.MaxTxFrame = min(cfg.MaxTxFrame, MaxPayload)
	if cfg.PID == 0 {
		cfg.PID = uint32(os.Getpid())
	}
	if cfg.Credit == 0 {
		cfg.Credit = DefaultCredit
	}
	return &Client{cfg: cfg, network: network, addr: addr}, nil
}

// NewStream prepares the link of one proxied stream of the named
// streamtype; it starts when the stream calls Start.
func (c *Client) NewStream(streamtype string) (*ClientStream, error) {
	if len(streamtype) < 1 || len(streamtype) > MaxStreamTypeName {
		return nil, fmt.Errorf("%w: %q", ErrStreamTypeName, streamtype)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &ClientStream{c: c, name: streamtype, ctx: ctx, cancel: cancel,
		notify: make(chan struct{}, 1), md: map[string]appValue{}, mdRx: map[string]rxValue{},
		dirty: map[string]bool{}, hintSent: -1}, nil
}

// Client link states (docs/wire.md §6.1).
type linkState uint8

const (
	linkDown        linkState = iota // dialing, or SENDING_INITIAL_TX / WAITING_CREATE_RESULT
	linkLocal                        // LOCAL_CONNECTED
	linkOperational                  // OPERATIONAL
)

// ClientStream is the link of one proxied stream. It implements the
// driver side of a remote stream (stream.RemoteDriver): Start, Tx, Connect,
// Disconnect, StartTimeout, CancelTimeout, Close.
type ClientStream struct {
	c      *Client
	name   string
	local  Local
	ctx    context.Context
	cancel context.CancelFunc
	notify chan struct{}

	mu            sync.Mutex
	state         linkState
	conn          net.Conn
	txReq         bool // the application asked for tx since the last look
	connReq       bool // the application called Connect
	connectSent   bool // ONWARD_CONNECT sent in this request cycle
	wantConn      bool // re-send ONWARD_CONNECT after a link re-establishment
	disconnect    bool // Disconnect: drop the link, come back idle
	timeout       *uint32
	md            map[string]appValue // what the application set: written only by SetMetadata
	mdRx          map[string]rxValue  // what the proxy sent (METADATA): written only by the link's reader
	dirty         map[string]bool     // set values not yet sent on this link
	hintSent      int64
	txCredit      int64 // advisory: credit granted by the onward peer
	peerCredit    int64 // advisory: the client's estimate of the peer's credit
	pendingCredit int32 // TXCR_UPDATE to send

	wmu  sync.Mutex  // serialises writes to the link
	hdrs []byte      // TX frame headers of one write (under wmu)
	bufs net.Buffers // one vectored write (writer goroutine)
}

// Start implements the driver: it starts the link goroutine.
func (cs *ClientStream) Start(l Local) {
	cs.local = l
	cs.peerCredit = int64(cs.c.cfg.Credit)
	l.Go(cs.run)
}

func (cs *ClientStream) kick() {
	select {
	case cs.notify <- struct{}{}:
	default:
	}
}

// Tx implements the driver: the application queued data or asked for tx.
func (cs *ClientStream) Tx() {
	cs.mu.Lock()
	cs.txReq = true
	cs.mu.Unlock()
	cs.kick()
}

// Connect implements the driver.
func (cs *ClientStream) Connect() {
	cs.mu.Lock()
	cs.connReq = true
	cs.mu.Unlock()
	cs.kick()
}

// Disconnect implements the driver: the link is closed (which ends the
// onward stream at the proxy) and re-established without a connect request.
func (cs *ClientStream) Disconnect() {
	cs.mu.Lock()
	cs.disconnect = true
	cs.connReq, cs.txReq, cs.wantConn = false, false, false
	conn := cs.conn
	cs.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// StartTimeout implements the driver (TIMEOUT_UPDATE, sent with priority).
// d <= 0 sends 0: the proxy applies its streamtype's timeout_ms (docs/wire.md
// §3.7); a positive d is sent as at least 1 ms.
func (cs *ClientStream) StartTimeout(d time.Duration) {
	var ms uint32
	if d > 0 {
		ms = uint32(min(max(d.Milliseconds(), 1), int64(TimeoutCancel-1)))
	}
	cs.mu.Lock()
	cs.timeout = &ms
	cs.mu.Unlock()
	cs.kick()
}

// CancelTimeout implements the driver.
func (cs *ClientStream) CancelTimeout() {
	v := TimeoutCancel
	cs.mu.Lock()
	cs.timeout = &v
	cs.mu.Unlock()
	cs.kick()
}

// Close implements the driver: the link is closed (no DESTROYING frame).
func (cs *ClientStream) Close() {
	cs.cancel()
	cs.mu.Lock()
	conn := cs.conn
	cs.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// SetMetadata sets a metadata value to send to the proxy (queued until the
// link is up; sent again after every link re-establishment).
func (cs *ClientStream) SetMetadata(name, value string) error {
	if len(name) < 1 || len(name) > MaxMetadataName || value == "" {
		return fmt.Errorf("%w: name %q (1..30 bytes), value of %d bytes (≥ 1)", ErrMetadata, name, len(value))
	}
	cs.mu.Lock()
	cs.md[name] = appValue{v: value, sets: cs.md[name].sets + 1}
	cs.dirty[name] = true
	cs.mu.Unlock()
	cs.kick()
	return nil
}

// appValue is a metadata value the application set, with the number of
// times it set the name (docs/stream-states.md).
type appValue struct {
	v    string
	sets uint32
}

// rxValue is a metadata value received from the proxy, with the
// application's appValue.sets when it arrived.
type rxValue struct {
	v    string
	over uint32
}

// Metadata returns the current value of name: set by the application or
// received from the proxy, whichever came last. Only what the application
// set is sent to the proxy.
func (cs *ClientStream) Metadata(name string) (string, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	app, set := cs.md[name]
	if rx, ok := cs.mdRx[name]; ok && rx.over == app.sets {
		return rx.v, true
	}
	return app.v, set
}

// TxCredit returns the advisory credit granted by the onward peer minus
// what was sent since (docs/wire.md §7.1).
func (cs *ClientStream) TxCredit() int64 {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.txCredit
}

// PeerTxCredit returns the advisory estimate of the onward peer's credit:
// the STREAMTYPE credit plus AddPeerTxCredit grants minus the payload bytes
// received since (docs/wire.md §7.1).
func (cs *ClientStream) PeerTxCredit() int64 {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.peerCredit
}

// AddPeerTxCredit grants the onward peer n more bytes of receive window
// (TXCR_UPDATE, h2/h3 onward streams).
func (cs *ClientStream) AddPeerTxCredit(n int32) {
	cs.mu.Lock()
	cs.peerCredit += int64(n)
	cs.pendingCredit += n
	cs.mu.Unlock()
	cs.kick()
}

func (cs *ClientStream) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-cs.ctx.Done():
		return false
	}
}

// run is the link loop: dial, create, serve, and again after link loss.
func (cs *ClientStream) run() {
	cfg := &cs.c.cfg
	log := cs.local.Logger()
	dec := NewDecoder(nil, ProxyToClient, Limits{})
	created := false
	for cs.ctx.Err() == nil {
		if cs.local.WaitRoom(cs.ctx) != nil {
			return
		}
		dctx, cancel := context.WithTimeout(cs.ctx, cfg.CreateTimeout)
		conn, err := cfg.DialContext(dctx, cs.c.network, cs.c.addr)
		cancel()
		if err != nil {
			if cs.ctx.Err() != nil {
				return
			}
			cs.local.State(event.UpstreamLinkRetry, uint32(cs.local.Since().Milliseconds()), fmt.Errorf("%w: %w", ErrLinkLost, err))
			if !cs.sleep(cfg.RetryInterval) {
				return
			}
			continue
		}
		cs.mu.Lock()
		cs.conn = conn
		closed := cs.ctx.Err() != nil
		cs.mu.Unlock()
		if closed {
			conn.Close()
			return
		}
		br := &burstReader{r: conn}
		dec.Reset(br)
		if err := cs.handshake(conn, dec); err != nil {
			log.Info("ss: proxy client: link not created", "streamtype", cs.name, "err", err)
			conn.Close()
			br.release()
			cs.mu.Lock()
			cs.conn = nil
			cs.mu.Unlock()
			if !cs.sleep(cfg.RetryInterval) {
				return
			}
			continue
		}
		if !created {
			created = true
			cs.local.State(event.Creating, 0, nil)
		}
		err = cs.session(conn, dec)
		conn.Close()
		br.release()
		cs.mu.Lock()
		cs.conn = nil
		cs.state = linkDown
		disc := cs.disconnect
		cs.disconnect = false
		if !disc {
			// A link lost while the onward stream was asked to connect, or
			// with tx pending, asks again on the next link: a DISCONNECTED
			// just before the loss cleared connectSent, and the queued data
			// will not notify again (its one-shot Tx was used).
			_, pending, _ := cs.local.PeekTx()
			cs.wantConn = cs.wantConn || cs.connectSent || pending
		}
		cs.connectSent = false
		cs.hintSent = -1
		cs.mu.Unlock()
		if cs.ctx.Err() != nil {
			return
		}
		if disc {
			cs.local.LinkEnded(true, nil)
			continue
		}
		log.Debug("ss: proxy client: link lost", "streamtype", cs.name, "err", err)
		cs.local.LinkEnded(false, linkLost(err))
		if !cs.sleep(cfg.RetryInterval) {
			return
		}
	}
}

// maxRxMetadata caps the distinct metadata names a proxy can make the client
// keep (the proxy is not trusted): METADATA for a further name is ignored.
const maxRxMetadata = 64

// maxClientBuflen caps the receive queue a proxy's client_buflen can ask for.
const maxClientBuflen = 16 << 20

// handshake sends STREAMTYPE and waits for a successful CREATE_RESULT.
func (cs *ClientStream) handshake(conn net.Conn, dec *Decoder) error {
	cfg := &cs.c.cfg
	b, err := (&StreamType{PID: cfg.PID, Credit: cfg.Credit, Name: cs.name}).AppendBinary(nil)
	if err != nil {
		return err
	}
	if _, err := conn.Write(b); err != nil {
		return err
	}
	conn.SetReadDeadline(time.Now().Add(cfg.CreateTimeout))
	msg, err := dec.Next()
	conn.SetReadDeadline(time.Time{})
	if err != nil {
		return err
	}
	cr, ok := msg.(*CreateResult)
	if !ok {
		return fmt.Errorf("ss: proxy client: %s before CREATE_RESULT", msg.Code())
	}
	if !cr.OK() {
		return errors.New("ss: proxy client: the proxy could not create the stream")
	}
	// client_buflen sizes the client's receive queue (docs/wire.md §4.1); the
	// proxy is not trusted with more than maxClientBuflen.
	if b, ok := cs.local.(interface{ SetRxBudget(int) }); ok && cr.ClientBuflen > 0 {
		b.SetRxBudget(int(min(cr.ClientBuflen, maxClientBuflen)))
	}
	return nil
}

// session runs one established link until it is lost or closed. This
// goroutine writes the control frames; in OPERATIONAL a tx pump goroutine
// writes TX_PAYLOAD as the application queues data (no actor hop on the
// data path). Writes are serialised by wmu.
func (cs *ClientStream) session(conn net.Conn, dec *Decoder) error {
	cs.mu.Lock()
	cs.state = linkLocal
	cs.disconnect = false // a Disconnect before this link is satisfied by it
	for name := range cs.md {
		cs.dirty[name] = true
	}
	if cs.wantConn {
		cs.connReq = true
		cs.wantConn = false
	}
	cs.mu.Unlock()
	readDone := make(chan error, 1)
	cs.local.Go(func() { readDone <- cs.read(dec) })
	var pump struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	stopPump := func() {
		if pump.cancel != nil {
			pump.cancel()
			<-pump.done
			pump.cancel, pump.done = nil, nil
		}
	}
	defer stopPump()
	var buf []byte
	for {
		var st linkState
		var err error
		buf, st, err = cs.flush(conn, buf[:0])
		if err != nil {
			conn.Close()
			return <-readDone
		}
		switch {
		case st == linkOperational && pump.cancel == nil:
			var pctx context.Context
			pctx, pump.cancel = context.WithCancel(cs.ctx)
			done := make(chan struct{})
			pump.done = done
			cs.local.Go(func() {
				defer close(done)
				cs.pump(pctx, conn)
			})
		case st != linkOperational && pump.cancel != nil:
			stopPump()
			cs.kick() // look at the tx queue again in LOCAL_CONNECTED
		}
		select {
		case <-cs.notify:
		case err := <-readDone:
			return err
		case <-cs.ctx.Done():
			conn.Close()
			return <-readDone
		}
	}
}

// pump writes queued tx data while the link is OPERATIONAL.
func (cs *ClientStream) pump(ctx context.Context, conn net.Conn) {
	var chunks []transport.Chunk
	var ctl []byte
	for {
		var err error
		chunks, err = cs.local.NextTx(ctx, chunks[:0])
		if err != nil {
			return
		}
		cs.wmu.Lock()
		ctl, _ = cs.control(ctl[:0]) // METADATA set before this data goes first
		if len(ctl) > 0 {
			_, err = conn.Write(ctl)
		}
		var sent int
		if err == nil {
			sent, err = cs.writeTx(conn, chunks, cs.c.cfg.MaxTxFrame)
		}
		cs.wmu.Unlock()
		if err == nil {
			cs.local.ReleaseTx(chunks) // written: the buffers may be reused
		}
		clear(chunks)
		if sent > 0 {
			cs.mu.Lock()
			cs.txCredit -= int64(sent)
			cs.hintSent = -1
			cs.mu.Unlock()
		}
		if err != nil {
			conn.Close()
			return
		}
	}
}

// flush writes the control frames the link state allows and returns the
// link state.
func (cs *ClientStream) flush(conn net.Conn, b []byte) ([]byte, linkState, error) {
	cs.wmu.Lock()
	defer cs.wmu.Unlock()
	b, st := cs.control(b)
	if st != linkOperational {
		cs.local.ArmTx()
	}
	if len(b) > 0 {
		if _, err := conn.Write(b); err != nil {
			return b[:0], st, err
		}
	}
	return b[:0], st, nil
}

// control appends what is to be sent besides tx data: TIMEOUT_UPDATE
// first, TXCR_UPDATE, METADATA, then PAYLOAD_LENGTH_HINT and ONWARD_CONNECT
// (LOCAL_CONNECTED) or an explicit length hint (OPERATIONAL).
func (cs *ClientStream) control(b []byte) ([]byte, linkState) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	st := cs.state
	if st == linkDown {
		return b, st
	}
	if cs.timeout != nil {
		b, _ = (&TimeoutUpdate{Millis: *cs.timeout}).AppendBinary(b)
		cs.timeout = nil
	}
	if cs.pendingCredit != 0 {
		b, _ = (&TxCredit{Delta: cs.pendingCredit}).AppendBinary(b)
		cs.pendingCredit = 0
	}
	for name := range cs.dirty {
		if v := cs.md[name].v; v != "" {
			b, _ = (&TxMetadata{Name: name, Value: []byte(v)}).AppendBinary(b)
		}
		delete(cs.dirty, name)
	}
	lenHint, pending, headLen := cs.local.PeekTx()
	switch st {
	case linkLocal:
		if !cs.connectSent && (cs.connReq || (cs.txReq && pending)) {
			hint := lenHint
			if hint < 0 && !cs.connReq {
				hint = headLen
			}
			if hint >= 0 {
				// The hint connects an idle onward stream by itself (POLL,
				// CONNECTING, as a local Send does). An ONWARD_CONNECT
				// behind it would race with a fast failure: arriving
				// during the retry wait it would reset the failure count
				// and connect at once.
				b, _ = (&PayloadLengthHint{Length: uint32(min(hint, 0xFFFFFFFF))}).AppendBinary(b)
				cs.hintSent = hint
			}
			if hint < 0 || cs.connReq {
				b, _ = (&OnwardConnect{}).AppendBinary(b)
			}
			cs.connectSent = true
		}
		if cs.connectSent {
			cs.connReq, cs.txReq = false, false
		}
	case linkOperational:
		cs.connReq, cs.txReq = false, false
		if lenHint >= 0 && lenHint != cs.hintSent {
			b, _ = (&PayloadLengthHint{Length: uint32(min(lenHint, 0xFFFFFFFF))}).AppendBinary(b)
			cs.hintSent = lenHint
		}
	}
	return b, st
}

// writeTx writes chunks as TX_PAYLOAD frames of at most max payload bytes
// in one vectored write, headers in one buffer and payloads in place: SOM
// and RELATED_START on the first piece, EOM and RELATED_END on the last
// when a chunk is split (docs/wire.md §3.4).
func (cs *ClientStream) writeTx(conn net.Conn, chunks []transport.Chunk, limit int) (int, error) {
	const keep = event.SOM | event.EOM | event.RelatedStart | event.RelatedEnd
	pieces, sent := 0, 0
	for _, c := range chunks {
		pieces += max(1, (len(c.Data)+limit-1)/limit)
		sent += len(c.Data)
	}
	need := pieces * (HeaderLen + PayloadHeaderLen)
	if cap(cs.hdrs) < need {
		cs.hdrs = make([]byte, 0, need)
	}
	hdrs := cs.hdrs[:0]
	bufs := cs.bufs[:0]
	m := TxPayload{TimeUS: monoUS()}
	for _, c := range chunks {
		p := c.Data
		first := true
		for {
			piece := p[:min(len(p), limit)]
			p = p[len(piece):]
			if first && len(p) == 0 {
				m.Flags = c.Flags & keep
			} else {
				m.Flags = 0
				if first {
					m.Flags |= c.Flags&event.SOM | event.RelatedStart
				}
				if len(p) == 0 {
					m.Flags |= c.Flags&event.EOM | event.RelatedEnd
				}
			}
			m.Payload = piece
			at := len(hdrs)
			hdrs, _ = m.AppendHeader(hdrs)
			bufs = append(bufs, hdrs[at:len(hdrs):len(hdrs)])
			if len(piece) > 0 {
				bufs = append(bufs, piece)
			}
			first = false
			if len(p) == 0 {
				break
			}
		}
	}
	keepBufs := bufs
	_, err := bufs.WriteTo(conn)
	clear(keepBufs)
	cs.bufs = keepBufs[:0]
	if cap(cs.hdrs) > 4096 {
		cs.hdrs = nil
	}
	if cap(cs.bufs) > 256 {
		cs.bufs = nil
	}
	return sent, err
}

// read handles proxy frames until the link ends.
func (cs *ClientStream) read(dec *Decoder) error {
	rideshare := ""
	for {
		msg, err := dec.Next()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *ConnState:
			if err := cs.local.WaitRoom(cs.ctx); err != nil {
				return err
			}
			cs.onState(m.State, m.Ack)
		case *RxPayload:
			if m.Rideshare != rideshare {
				rideshare = m.Rideshare
				cs.local.SetRideshare(rideshare)
			}
			cs.mu.Lock()
			cs.peerCredit -= int64(len(m.Payload))
			cs.mu.Unlock()
			if err := cs.local.Rx(cs.ctx, m.Payload, m.Flags&^(event.RideshareFlag|event.PollFlag|event.PerfJSON)); err != nil {
				return err
			}
		case *RxMetadata:
			cs.mu.Lock()
			if _, known := cs.mdRx[m.Name]; known || len(cs.mdRx) < maxRxMetadata {
				cs.mdRx[m.Name] = rxValue{v: string(m.Value), over: cs.md[m.Name].sets}
			}
			cs.mu.Unlock()
		case *RxCredit:
			cs.mu.Lock()
			cs.txCredit += int64(m.Delta)
			cs.mu.Unlock()
		case *Perf:
			if err := cs.local.Rx(cs.ctx, m.JSON, event.SOM|event.EOM|event.PerfJSON); err != nil {
				return err
			}
		case *CreateResult:
			return errors.New("ss: proxy client: CREATE_RESULT while not waiting for one")
		default:
			return fmt.Errorf("ss: proxy client: unexpected %s", msg.Code())
		}
	}
}

// onState applies a CONNSTATE (docs/wire.md §6.1).
func (cs *ClientStream) onState(st event.State, ack uint32) {
	switch st {
	case event.Creating, event.Destroying, event.EventWaitCancelled, event.UpstreamLinkRetry,
		event.SinkJoin, event.SinkPart:
		return
	case event.Connected:
		cs.mu.Lock()
		if cs.state == linkOperational {
			cs.mu.Unlock()
			return
		}
		cs.state = linkOperational
		cs.mu.Unlock()
		cs.local.State(st, ack, nil)
		cs.kick()
		return
	case event.Disconnected, event.Unreachable, event.AuthFailed:
		cs.mu.Lock()
		cs.state = linkLocal
		cs.connectSent = false
		cs.mu.Unlock()
	}
	cs.local.State(st, ack, reportedCause(st))
}

// reportedCause is the Err of a state the proxy reported: SSSv1's CONNSTATE
// carries no cause (an lws proxy refuses a longer frame), so the cause
// stays in the proxy's log and the client says so (docs/errors.md).
func reportedCause(st event.State) error {
	switch st {
	case event.Unreachable, event.Disconnected, event.AuthFailed, event.Timeout, event.AllRetriesFailed:
		return &ReportedError{State: st}
	}
	return nil
}

// linkLost wraps the error that ended a proxy link.
func linkLost(err error) error {
	if err == nil {
		return ErrLinkLost
	}
	return fmt.Errorf("%w: %w", ErrLinkLost, err)
}
