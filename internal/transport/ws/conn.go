package ws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// Errors describing how a connection ended.
var (
	// ErrPeerClosed wraps a *websocket.CloseError for a close frame from the
	// peer with a code other than 1000 (normal) or 1005 (no status).
	ErrPeerClosed = errors.New("ss: ws: closed by peer")
	// ErrConnLost is wrapped when the connection fails without a close frame.
	ErrConnLost = errors.New("ss: ws: connection lost")
	// ErrValidity is returned when no validity confirmation (PONG) arrived
	// within svalidhup seconds (docs/streams.md §7).
	ErrValidity = errors.New("ss: ws: validity timeout")
)

const (
	// RxChunkSize bounds rx chunks: larger messages are delivered as several
	// chunks, SOM on the first and EOM on the last.
	RxChunkSize = 64 << 10
	// rxInitial is the first size of the per-connection read buffer, which
	// grows (doubling) up to RxChunkSize as larger messages arrive.
	rxInitial = 4 << 10
	// DefaultMaxRxMessage is the largest message accepted from the peer
	// when the streamtype sets no ws_max_rx_message: a larger one ends the
	// connection with close code 1009 (message too big) and an error
	// wrapping ErrConnLost (docs/security-validation.md). Messages are
	// delivered in chunks as they arrive, so the limit bounds how long a
	// peer can keep one message open, not the memory held.
	DefaultMaxRxMessage = 16 << 20
	// controlWait is the write deadline of control frames (pong, ping, close)
	// and how long RunConn waits to send its close frame.
	controlWait = time.Second
)

// validitySecond is the unit of svalidping/svalidhup; tests shorten it.
var validitySecond = time.Second

// RunConn pumps messages over an already-established WebSocket connection c
// until the connection ends or ctx is done, then closes c and returns. The
// client Protocol calls it after its handshake; the HTTP server calls it after
// a server-side upgrade. The caller has already reported CONNECTED (and, on a
// client, captured the handshake response headers); RunConn reports no state.
// It works for both roles (client frames are masked, server frames are not;
// the role is gorilla's, fixed when c was created). gorilla did the
// handshake; RunConn reads and writes the frames itself, starting with the
// bytes gorilla's handshake read past its end.
//
//   - rx: every text or binary message is delivered through sink.Rx as
//     chunks, SOM on the first and EOM on the last: one SOM|EOM chunk unless
//     the message is larger than RxChunkSize (64 KiB). Text and binary are
//     not distinguished. Control frames are not delivered: pings are answered
//     with pongs, pongs call sink.ValidityConfirmed. Data messages do not
//     confirm validity (docs/streams.md §7, as lws).
//   - tx: chunks from a.Tx.Next, one chunk = one frame, in order: SOM starts
//     a message (TEXT, or BINARY when a.Type.WSBinary), a chunk without SOM
//     is a continuation frame, EOM sets FIN. A chunk failing CheckFraming is
//     logged and dropped. a.Tx may be nil (nothing is sent).
//   - validity (docs/streams.md §7): when sink has a SetPing(func()) method (the
//     stream runtime's sink, stream.PingSetter), RunConn registers a function
//     that queues a PING and leaves the timer to the stream, which cancels
//     ctx (cause ErrValidityTimeout) on svalidhup. With any other sink,
//     RunConn runs the timer itself when a.Type.Retry has SValidHup > 0: a
//     PING after SValidPing seconds without a PONG, and the connection is
//     closed (ErrValidity) when SValidHup seconds pass without one; the timer
//     starts when RunConn starts.
//   - ws_prioritize_reads needs nothing here: reading runs on its own
//     goroutine and never waits for queued writes.
//   - pull (Stream.Recv): on a plain socket, when sink is a
//     transport.PullOfferer, the read role is offered to the stream
//     (pull.go); once taken, the frames are read on the goroutine that
//     calls ReadFramed, with the same frame reader.
//   - the peer's frames are checked (RFC 6455 §5): a violation sends close
//     1002 and gives an error wrapping ErrConnLost and ErrProtocol.
//
// The Result: ctx done → a close frame 1000 is sent (best effort, ≤ 1 s) and
// Err is context.Cause(ctx). A close frame from the peer is answered; code 1000 or
// 1005 (no status) gives Err nil, any other code an error wrapping
// ErrPeerClosed and the *websocket.CloseError (code and reason are also
// logged). A lost connection gives an error wrapping ErrConnLost; the
// validity timeout ErrValidity; sink.Rx failing, that error. A message
// longer than a.Type.WSMaxRxMessage (DefaultMaxRxMessage when 0) is answered
// with close 1009 and gives an error wrapping ErrConnLost and
// websocket.ErrReadLimit. RunConn does not deliver the perf report (the
// caller does).
//
// RunConn takes ownership of c: it is closed when RunConn returns and all
// RunConn's goroutines have ended. The caller must not use c concurrently
// (gorilla's reader and writer are not used).
func RunConn(ctx context.Context, c *websocket.Conn, a *transport.Attempt, sink transport.Sink) transport.Result {
	client := isClient(c, a)
	p := &pump{
		c:    c,
		a:    a,
		sink: sink,
		log:  sink.Logger(),
		w:    newFrameWriter(c.NetConn(), client),
		// Buffered so neither reader nor writer blocks when RunConn has
		// already stopped listening.
		readDone:  make(chan error, 1),
		writeDone: make(chan error, 1),
		confirmed: make(chan struct{}, 1),
	}
	limit := int64(DefaultMaxRxMessage)
	if a.Type != nil && a.Type.WSMaxRxMessage > 0 {
		limit = int64(a.Type.WSMaxRxMessage)
	}
	p.fr = newFrameReader(c, p.w, !client, limit, p.ponged)
	return p.run(ctx)
}

// pingSetter is the stream runtime's Sink extension (stream.PingSetter):
// it runs the validity timer and calls the function when a PING is due.
type pingSetter interface{ SetPing(ping func()) }

// isClient reports whether c is the client end. gorilla keeps the role in an
// unexported field; reading it is the only way to know which frames to mask
// with a Conn made elsewhere. The streamtype's role is the fallback.
func isClient(c *websocket.Conn, a *transport.Attempt) bool {
	if f := reflect.ValueOf(c).Elem().FieldByName("isServer"); f.IsValid() && f.Kind() == reflect.Bool {
		return !f.Bool()
	}
	return a.Type == nil || !a.Type.Server
}

type pump struct {
	c    *websocket.Conn
	a    *transport.Attempt
	sink transport.Sink
	log  *slog.Logger
	w    *frameWriter
	fr   *frameReader

	// The read role offered to the stream (pull.go): offered is set before
	// the reader goroutine starts; pull (allocated by Take) and pullOff
	// (the reader goroutine no longer reads) are guarded by pullMu.
	offered bool
	pullMu  sync.Mutex
	pull    *transport.PullRole
	pullOff bool

	readDone  chan error
	writeDone chan error
	confirmed chan struct{}
	pinging   atomic.Bool
}

func (p *pump) run(ctx context.Context) transport.Result {
	ictx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		_ = p.c.Close()
		wg.Wait()
	}()

	p.offered = p.offerPull()
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.readDone <- p.reader(ictx)
	}()
	if p.a.Tx != nil {
		dataOp := byte(opText)
		if p.a.Type != nil && p.a.Type.WSBinary {
			dataOp = opBinary
		}
		if d := directFor(p, p.c.NetConn(), dataOp); d != nil {
			// Sends write from the sending goroutine (direct.go); a writer
			// goroutine runs only while frames wait for the socket.
			d.tx.SetDirect(d)
			defer func() {
				d.tx.SetDirect(nil)
				_ = p.c.Close() // ends a writer blocked on a full socket
				d.wg.Wait()
			}()
		} else {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.writeDone <- p.writer(ictx)
			}()
		}
	}

	// The stream runtime runs the §7 timer itself when its sink takes a
	// ping function; otherwise (another Sink) RunConn runs it.
	pingReq := make(chan struct{}, 1)
	v := &validity{}
	if ps, ok := p.sink.(pingSetter); ok {
		ps.SetPing(func() {
			select {
			case pingReq <- struct{}{}:
			default:
			}
		})
	} else {
		v = newValidity(p.a)
	}
	defer v.stop()
	for {
		select {
		case <-ctx.Done():
			p.sendClose(&wg, websocket.CloseNormalClosure)
			return transport.Result{Err: context.Cause(ctx)}
		case <-pingReq:
			p.ping(&wg)
		case err := <-p.readDone:
			if ctx.Err() != nil { // the reader saw ctx first
				p.sendClose(&wg, websocket.CloseNormalClosure)
				return transport.Result{Err: context.Cause(ctx)}
			}
			return transport.Result{Err: p.readEnd(err)}
		case err := <-p.writeDone:
			if ctx.Err() != nil {
				p.sendClose(&wg, websocket.CloseNormalClosure)
				return transport.Result{Err: context.Cause(ctx)}
			}
			// The writer fails when the connection does; the reader usually
			// has the better reason (a close frame already on its way).
			t := time.NewTimer(controlWait)
			select {
			case rerr := <-p.readDone:
				t.Stop()
				return transport.Result{Err: p.readEnd(rerr)}
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return transport.Result{Err: context.Cause(ctx)}
			}
			p.log.Info("ss: ws: write failed", "stream", p.a.StreamID, "err", err)
			return transport.Result{Err: fmt.Errorf("%w: write: %w", ErrConnLost, err)}
		case <-p.confirmed:
			v.confirm()
		case <-v.C():
			if v.expired() {
				p.log.Info("ss: ws: validity timeout", "stream", p.a.StreamID)
				return transport.Result{Err: ErrValidity}
			}
			p.ping(&wg)
		}
	}
}

// ping sends a PING from its own goroutine, so that a writer blocked by a
// peer that does not read never blocks RunConn's loop; at most one is in
// flight.
func (p *pump) ping(wg *sync.WaitGroup) {
	if !p.pinging.CompareAndSwap(false, true) {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer p.pinging.Store(false)
		if err := p.w.writeControl(opPing, nil, time.Now().Add(controlWait)); err != nil {
			p.log.Debug("ss: ws: ping not sent", "stream", p.a.StreamID, "err", err)
		}
	}()
}

// sendClose writes a close frame, waiting at most controlWait for the writer
// to let go of the connection.
func (p *pump) sendClose(wg *sync.WaitGroup, code int) {
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		_ = p.w.writeControl(opClose, websocket.FormatCloseMessage(code, ""), time.Now().Add(controlWait))
	}()
	t := time.NewTimer(controlWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// readEnd turns the reader's error into the Result error, logging closes.
func (p *pump) readEnd(err error) error {
	var ce *websocket.CloseError
	// A connection ending without a close frame is not a CloseError
	// (frameReader); 1006 is never sent, but kept out all the same.
	if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
		p.log.Info("ss: ws: closed by peer", "stream", p.a.StreamID, "code", ce.Code, "reason", ce.Text)
		if ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseNoStatusReceived {
			return nil
		}
		return fmt.Errorf("%w: %w", ErrPeerClosed, ce)
	}
	if errors.Is(err, errSink) {
		return err
	}
	p.log.Info("ss: ws: connection lost", "stream", p.a.StreamID, "err", err)
	return fmt.Errorf("%w: %w", ErrConnLost, err)
}

// errSink wraps a sink.Rx failure (the stream is going away).
var errSink = errors.New("ss: ws: rx not accepted")

// ponged is the frame reader's PONG handler.
func (p *pump) ponged() {
	p.sink.ValidityConfirmed()
	select {
	case p.confirmed <- struct{}{}:
	default:
	}
}

// reader delivers every data message as SOM…EOM chunks until an error,
// or until it hands the read role over to the stream (pull.go).
func (p *pump) reader(ctx context.Context) error {
	for {
		data, flags, err := p.fr.next()
		if err != nil {
			return p.handOver(ctx, err)
		}
		if err := p.rx(ctx, data, flags); err != nil {
			return p.handOver(ctx, err)
		}
	}
}

func (p *pump) rx(ctx context.Context, data []byte, flags event.Flags) error {
	if err := p.sink.Rx(ctx, data, flags); err != nil {
		return fmt.Errorf("%w: %w", errSink, err)
	}
	return nil
}

// writer sends every chunk from a.Tx as one frame until ctx is done or a
// write fails.
func (p *pump) writer(ctx context.Context) error {
	dataOp := byte(opText)
	if p.a.Type != nil && p.a.Type.WSBinary {
		dataOp = opBinary
	}
	open := false
	for {
		ch, err := p.a.Tx.Next(ctx)
		if err != nil {
			return err
		}
		if err := CheckFraming(open, ch.Flags); err != nil {
			p.log.Warn("ss: ws: tx chunk dropped", "stream", p.a.StreamID, "flags", ch.Flags, "len", len(ch.Data), "err", err)
			continue
		}
		op := byte(opContinuation)
		if ch.Flags&event.SOM != 0 {
			op = dataOp
		}
		fin := ch.Flags&event.EOM != 0
		if err := p.w.writeData(op, fin, ch.Data); err != nil {
			return err
		}
		open = !fin
	}
}
