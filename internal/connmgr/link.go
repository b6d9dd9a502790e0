package connmgr

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/transport"
)

// link is one network connection to a broker and the paho client on it,
// owned by a connection actor (which alone creates and drops it). The
// fields below the mutexes are shared with the attachments' callers.
type link struct {
	m        *Manager
	e        *entry
	settings Settings   // CONNECT settings
	self     *actor.PID // the owning connection actor
	dial     func(ctx context.Context) (net.Conn, error)
	gate     readGate

	ctx    context.Context // bounds dialing: cancelled by drop and Manager.Close
	cancel context.CancelFunc

	sessionPresent bool        // set before the actor hears CONNECT succeeded
	client         paho.Client // set before the actor hears CONNECT succeeded

	mu      sync.Mutex
	dropped bool          // the actor let go of the link
	nc      *bufferedConn // set when paho opens the connection

	wireMu    sync.Mutex // orders SUBSCRIBE/UNSUBSCRIBE with the routing table
	birthMu   sync.Mutex
	birthSent bool

	// Pings requested by streams (Attachment.Ping): confirmed by the next
	// bytes received.
	pings    atomic.Int32
	pingMu   sync.Mutex
	pingWait []func()
}

func newLink(m *Manager, self *actor.PID, e *entry, settings Settings, dial func(ctx context.Context) (net.Conn, error)) *link {
	l := &link{m: m, e: e, settings: settings, self: self, dial: dial}
	l.ctx, l.cancel = context.WithCancel(m.ctx)
	l.gate.init(int64(m.cfg.RxQueue))
	return l
}

// connect runs paho's CONNECT (on a goroutine of its own) and reports how
// it went. A link the actor dropped meanwhile is closed here.
func (l *link) connect() error {
	client := paho.NewClient(l.pahoOptions())
	tok := client.Connect()
	// The token completes within ConnectTimeout (dial and CONNACK are both
	// bounded); the timer only guards against a paho bug.
	t := time.NewTimer(2*l.m.cfg.ConnectTimeout + time.Second)
	defer t.Stop()
	var err error
	select {
	case <-tok.Done():
		if terr := tok.Error(); terr != nil {
			ct, _ := tok.(*paho.ConnectToken)
			if ct != nil && ct.ReturnCode() != 0 && ct.ReturnCode() < 0x80 {
				err = fmt.Errorf("%w: CONNECT to %s: %w", ErrRefused, l.e.id, &transport.ConnackError{Code: ct.ReturnCode()})
			} else {
				err = fmt.Errorf("ss: mqtt connect to %s: %w", l.e.id, terr)
			}
		} else if ct, ok := tok.(*paho.ConnectToken); ok {
			l.sessionPresent = ct.SessionPresent()
		}
	case <-t.C:
		err = fmt.Errorf("%w: CONNECT to %s", ErrTimeout, l.e.id)
		client.Disconnect(0)
	}
	if err != nil {
		l.cancel()
		l.gate.close()
		return err
	}
	l.mu.Lock()
	dropped := l.dropped
	if !dropped {
		l.client = client
	}
	l.mu.Unlock()
	if dropped {
		client.Disconnect(uint(l.m.cfg.Quiesce / time.Millisecond))
		return ErrClosed
	}
	return nil
}

// drop lets go of the link: the reader stops waiting at the gate and the
// client disconnects (DISCONNECT first when graceful) on a goroutine of its
// own. A CONNECT still in progress closes the link when it finishes.
func (l *link) drop(graceful bool) {
	l.mu.Lock()
	if l.dropped {
		l.mu.Unlock()
		return
	}
	l.dropped = true
	client := l.client
	l.mu.Unlock()
	l.cancel()
	l.gate.close()
	if client == nil {
		return
	}
	quiesce := uint(0)
	if graceful {
		quiesce = uint(l.m.cfg.Quiesce / time.Millisecond)
	}
	l.m.wg.Add(1)
	go func() {
		defer l.m.wg.Done()
		client.Disconnect(quiesce)
		l.m.log.Debug("ss: mqtt broker connection closed", "broker", l.e.id.String())
	}()
}

// pahoOptions builds the paho client options for the link.
func (l *link) pahoOptions() *paho.ClientOptions {
	cfg := l.m.cfg
	s := l.settings
	id := l.e.id.ClientID
	clean := s.CleanStart
	if id == "" {
		id, clean = randomClientID(), true
	}
	o := paho.NewClientOptions()
	// The URL is never dialled: openConn does it with our dialer.
	o.AddBroker((&url.URL{Scheme: "tcp", Host: "ss.invalid:1883"}).String())
	o.SetClientID(id)
	o.SetUsername(l.e.id.Username)
	o.SetPassword(s.Password)
	o.SetCleanSession(clean)
	o.SetProtocolVersion(4)
	o.SetKeepAlive(time.Duration(s.KeepAlive) * time.Second)
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	o.SetConnectTimeout(cfg.ConnectTimeout)
	o.SetWriteTimeout(cfg.AckTimeout)
	o.SetOrderMatters(true)
	o.SetStore(paho.NewMemoryStore())
	if w := s.Will; w != nil {
		o.SetWill(w.Topic, w.Message, w.QoS, w.Retain)
	}
	// paho's handlers must not block: they hand over to the actor.
	sys, self := l.m.sys, l.self
	o.SetDefaultPublishHandler(func(_ paho.Client, msg paho.Message) {
		l.gate.admit()
		sys.Tell(self, cInbound{l: l, msg: msg})
	})
	o.SetConnectionLostHandler(func(_ paho.Client, err error) { sys.Tell(self, cLost{l: l, err: err}) })
	o.SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) { return l.openConn() })
	return o
}

// openConn is the dial step of a broker connection: it opens the network
// connection with the stream's dialer (TCP or unix socket, SOCKS5, TLS with
// the policy's trust store, socket options; Request.Dial) bounded by
// Config.ConnectTimeout, Close and the link being dropped, and wraps it for
// paho. Other ways to
// reach a broker (MQTT over WebSocket) plug in here, through Request.Dial.
func (l *link) openConn() (net.Conn, error) {
	ctx, cancel := context.WithTimeout(l.ctx, l.m.cfg.ConnectTimeout)
	defer cancel()
	nc, err := l.dial(ctx)
	if err != nil {
		return nil, err
	}
	bc := &bufferedConn{Conn: nc, r: bufio.NewReaderSize(nc, 4096), l: l}
	l.mu.Lock()
	l.nc = bc
	l.mu.Unlock()
	return bc, nil
}

// bufferedConn is the network connection paho uses. It reads through a
// buffer (paho reads each packet's fixed header one byte at a time, a system
// call per byte on a bare socket) and only while the link's read gate is
// open, serialises writes so that a PINGREQ can be slipped in between
// paho's packets (paho writes each packet with one Write), and tells the
// link when bytes arrive while a ping is pending.
type bufferedConn struct {
	net.Conn
	r   *bufio.Reader
	l   *link
	wmu sync.Mutex
}

func (b *bufferedConn) Read(p []byte) (int, error) {
	if !b.l.gate.wait() {
		return 0, net.ErrClosed
	}
	n, err := b.r.Read(p)
	if n > 0 && b.l.pings.Load() > 0 {
		b.l.pinged()
	}
	return n, err
}

func (b *bufferedConn) Write(p []byte) (int, error) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	return b.Conn.Write(p)
}

// pinged runs the confirmations waiting for bytes from the broker.
func (l *link) pinged() {
	l.pingMu.Lock()
	w := l.pingWait
	l.pingWait = nil
	l.pings.Store(0)
	l.pingMu.Unlock()
	for _, f := range w {
		f()
	}
}

// readGate holds the link's reader back while the connection actor has
// max PUBLISHes waiting in its mailbox (paho's handler hands each one over
// without blocking), or while an attachment's receive queue is full
// (stalls). That is the bound on what a broker can make us hold: at most
// max messages in the mailbox plus the few paho has read past the gate,
// and RxQueue (plus that overshoot) per attachment.
type readGate struct {
	max      int64
	inflight atomic.Int64 // PUBLISHes handed to the actor, not yet routed
	stalls   atomic.Int32 // attachments whose queue is full
	sleeping atomic.Int32 // readers waiting (0 or 1)

	mu   sync.Mutex
	wake chan struct{} // closed when the gate may have opened
	gone chan struct{} // closed by close
	once sync.Once
}

func (g *readGate) init(max int64) {
	g.max = max
	g.gone = make(chan struct{})
}

func (g *readGate) open() bool { return g.inflight.Load() < g.max && g.stalls.Load() == 0 }

// wait blocks while the gate is shut; false once the link is dropped.
func (g *readGate) wait() bool {
	for !g.open() {
		g.mu.Lock()
		g.sleeping.Add(1)
		if g.open() {
			g.sleeping.Add(-1)
			g.mu.Unlock()
			break
		}
		if g.wake == nil {
			g.wake = make(chan struct{})
		}
		w := g.wake
		g.mu.Unlock()
		select {
		case <-w:
			g.sleeping.Add(-1)
		case <-g.gone:
			g.sleeping.Add(-1)
			return false
		}
	}
	select {
	case <-g.gone:
		return false
	default:
		return true
	}
}

func (g *readGate) poke() {
	if g.sleeping.Load() == 0 {
		return
	}
	g.mu.Lock()
	if g.wake != nil {
		close(g.wake)
		g.wake = nil
	}
	g.mu.Unlock()
}

// admit counts a PUBLISH handed to the actor (paho's handler; never blocks).
func (g *readGate) admit() { g.inflight.Add(1) }

// routed: the actor has handled one admitted PUBLISH.
func (g *readGate) routed() {
	g.inflight.Add(-1)
	g.poke()
}

func (g *readGate) stall() { g.stalls.Add(1) }

func (g *readGate) unstall() {
	g.stalls.Add(-1)
	g.poke()
}

func (g *readGate) close() { g.once.Do(func() { close(g.gone) }) }
