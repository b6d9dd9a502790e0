package connmgr

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Sentinel errors.
var (
	// ErrMismatch is wrapped by *MismatchError.
	ErrMismatch = errors.New("ss: mqtt connection settings disagree")
	// ErrConnectionLost is wrapped when the broker connection ends under an attachment.
	ErrConnectionLost = errors.New("ss: mqtt broker connection lost")
	// ErrSlowConsumer is the reason an attachment is evicted when its receive
	// queue stayed full for Config.RxStall.
	ErrSlowConsumer = errors.New("ss: mqtt stream too slow to receive; detached")
	// ErrRefused is wrapped when the broker refuses CONNECT (non-zero CONNACK) or a subscription (SUBACK 0x80).
	ErrRefused = errors.New("ss: mqtt refused by broker")
	// ErrTimeout is wrapped when the broker does not acknowledge in time.
	ErrTimeout = errors.New("ss: mqtt acknowledgement timeout")
	// ErrTopic is wrapped by invalid topics and topic filters.
	ErrTopic = errors.New("ss: mqtt invalid topic")
	// ErrClosed is returned after Manager.Close or Detach.
	ErrClosed = errors.New("ss: mqtt connection manager closed")
)

// Identity is a broker identity (streams.md §12.2): streams with equal
// identities share one broker connection.
type Identity struct {
	Network    string // "tcp" or "unix"
	Address    string // host:port, socket path or @name
	TLS        bool
	ServerName string
	TrustStore string // trust store name, "" for the system roots
	ClientCert int    // client certificate slot, -1 for none
	SOCKS5     string
	ClientID   string // "" means a random id per connection (clean session forced)
	Username   string
}

// String renders the identity for logs and errors.
func (id Identity) String() string {
	s := id.Network + ":" + id.Address
	if id.TLS {
		s += " tls"
	}
	if id.ClientID != "" {
		s += " client-id " + strconv.Quote(id.ClientID)
	}
	return s
}

// Will is the CONNECT will message.
type Will struct {
	Topic   string
	Message string
	QoS     byte
	Retain  bool
}

// Settings are the connection-level (connect-time) values a stream brings.
// Streams sharing a connection must agree on all of them.
type Settings struct {
	// Streamtype names the asking stream's streamtype in errors and logs.
	Streamtype string
	KeepAlive  uint16 // seconds, 0 disables
	// CleanStart is the effective clean-session flag (already forced true
	// when Identity.ClientID is empty).
	CleanStart bool
	Will       *Will // nil: no will
	Password   string
}

// MismatchError says that a stream disagrees with the broker connection it
// would share on a connection-level setting.
type MismatchError struct {
	Key        string // policy key, e.g. "mqtt_keep_alive"
	Streamtype string // the stream asking to attach
	Value      string
	Other      string // streamtype that opened the shared connection
	OtherValue string
	Broker     string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("ss: mqtt streamtype %q has %s %s but streamtype %q opened the shared broker connection (%s) with %s %s; streams sharing a broker connection must agree",
		e.Streamtype, e.Key, e.Value, e.Other, e.Broker, e.Key, e.OtherValue)
}

// Unwrap returns ErrMismatch.
func (e *MismatchError) Unwrap() error { return ErrMismatch }

// Request is what Attach needs to find or open a broker connection.
type Request struct {
	Identity Identity
	Settings Settings
	// Dial opens the network connection (TCP/unix, SOCKS5, TLS) when a new
	// broker connection is needed. It is called with a context bounded by
	// Config.ConnectTimeout and cancelled by Close.
	Dial func(ctx context.Context) (net.Conn, error)
}

// Config configures a Manager. The zero value works.
type Config struct {
	Logger         *slog.Logger  // nil: silent
	ConnectTimeout time.Duration // network connect + CONNACK, default 15 s
	AckTimeout     time.Duration // SUBACK/UNSUBACK/birth ack and write limit, default 9 s
	// RxQueue is each attachment's receive queue length in messages, default 256.
	RxQueue int
	// RxStall is how long a full receive queue may hold up the connection's
	// reader before its attachment is evicted, default 5 s.
	RxStall time.Duration
	// Quiesce bounds the wait for DISCONNECT to be written, default 1 s.
	Quiesce time.Duration
}

// Manager owns the shared broker connections of one runtime.
type Manager struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context // cancelled by Close; bounds dialing
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[Identity]*conn
	all    map[*conn]struct{} // every conn not yet finished, for Close
	closed bool
	opened int // connections opened in total (metrics/tests)
}

// New returns a Manager.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 9 * time.Second
	}
	if cfg.RxQueue <= 0 {
		cfg.RxQueue = 256
	}
	if cfg.RxStall <= 0 {
		cfg.RxStall = 5 * time.Second
	}
	if cfg.Quiesce <= 0 {
		cfg.Quiesce = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel,
		conns: map[Identity]*conn{}, all: map[*conn]struct{}{}}
}

// Connections returns the number of broker connections opening, open or
// still closing.
func (m *Manager) Connections() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.all)
}

// Opened returns how many broker connections this Manager has opened in total.
func (m *Manager) Opened() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.opened
}

// CheckCompatible returns a *MismatchError when a broker connection for id is
// open (or opening) with connection-level settings that disagree with s. The
// runtime may call it when a stream is created, to fail early; Attach makes
// the same check.
func (m *Manager) CheckCompatible(id Identity, s Settings) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.conns[id]; c != nil {
		return compare(c.settings, s, id)
	}
	return nil
}

func compare(have, want Settings, id Identity) error {
	mis := func(key, v, ov string) error {
		return &MismatchError{Key: key, Streamtype: want.Streamtype, Value: v,
			Other: have.Streamtype, OtherValue: ov, Broker: id.String()}
	}
	if have.KeepAlive != want.KeepAlive {
		return mis("mqtt_keep_alive", strconv.Itoa(int(want.KeepAlive)), strconv.Itoa(int(have.KeepAlive)))
	}
	if have.CleanStart != want.CleanStart {
		return mis("mqtt_clean_start", strconv.FormatBool(want.CleanStart), strconv.FormatBool(have.CleanStart))
	}
	hw, ww := have.Will, want.Will
	switch {
	case (hw == nil) != (ww == nil):
		q := func(w *Will) string {
			if w == nil {
				return "(none)"
			}
			return strconv.Quote(w.Topic)
		}
		return mis("mqtt_will_topic", q(ww), q(hw))
	case hw != nil:
		if hw.Topic != ww.Topic {
			return mis("mqtt_will_topic", strconv.Quote(ww.Topic), strconv.Quote(hw.Topic))
		}
		if hw.Message != ww.Message {
			return mis("mqtt_will_message", strconv.Quote(ww.Message), strconv.Quote(hw.Message))
		}
		if hw.QoS != ww.QoS {
			return mis("mqtt_will_qos", strconv.Itoa(int(ww.QoS)), strconv.Itoa(int(hw.QoS)))
		}
		if hw.Retain != ww.Retain {
			return mis("mqtt_will_retain", strconv.FormatBool(ww.Retain), strconv.FormatBool(hw.Retain))
		}
	}
	if have.Password != want.Password {
		return mis("password", "(hidden)", "(a different one)")
	}
	return nil
}

// Attach finds the broker connection for req.Identity or opens one, waits
// until it is up (CONNACK) and returns an attachment to it. ctx bounds the
// wait; the connection attempt itself is bounded by Config.ConnectTimeout.
// Every successful Attach must be followed by Detach.
func (m *Manager) Attach(ctx context.Context, req Request) (*Attachment, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	c := m.conns[req.Identity]
	if c != nil {
		if err := compare(c.settings, req.Settings, req.Identity); err != nil {
			m.mu.Unlock()
			return nil, err
		}
	} else {
		c = m.newConn(req)
		m.conns[req.Identity] = c
		m.all[c] = struct{}{}
		m.opened++
		go c.connect(req.Dial)
	}
	c.refs++
	m.mu.Unlock()

	select {
	case <-c.ready:
	case <-ctx.Done():
		go m.release(c) // may wait for the CONNECT in progress
		return nil, ctx.Err()
	}
	if c.connErr != nil {
		m.release(c)
		return nil, c.connErr
	}
	a := &Attachment{c: c, done: make(chan struct{}), notify: make(chan struct{}, 1), space: make(chan struct{}, 1)}
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		m.release(c)
		return nil, c.deathErr()
	}
	c.atts[a] = struct{}{}
	c.mu.Unlock()
	return a, nil
}

// release drops one reference; the last one closes the connection.
func (m *Manager) release(c *conn) {
	m.mu.Lock()
	c.refs--
	last := c.refs == 0 && !c.closing
	if last {
		c.closing = true
		if m.conns[c.id] == c {
			delete(m.conns, c.id)
		}
	}
	m.mu.Unlock()
	if last {
		c.shutdown()
	}
}

// Close disconnects every broker connection and waits (bounded by ctx) until
// their goroutines have ended. Attachments see ErrClosed. Idempotent.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	var all []*conn
	for c := range m.all {
		all = append(all, c)
		c.closing = true
	}
	clear(m.conns)
	m.mu.Unlock()
	m.cancel()
	for _, c := range all {
		go c.shutdown()
	}
	for _, c := range all {
		select {
		case <-c.finished:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (m *Manager) forget(c *conn) {
	m.mu.Lock()
	if m.conns[c.id] == c {
		delete(m.conns, c.id)
	}
	delete(m.all, c)
	m.mu.Unlock()
}

func (m *Manager) newConn(req Request) *conn {
	return &conn{
		m: m, id: req.Identity, settings: req.Settings,
		ready: make(chan struct{}), finished: make(chan struct{}),
		atts: map[*Attachment]struct{}{}, filters: map[string]int{},
	}
}

func randomClientID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "ss-" + hex.EncodeToString(b[:])
}

// pahoOptions builds the paho client options for a connection.
func (c *conn) pahoOptions(dial func(ctx context.Context) (net.Conn, error)) *paho.ClientOptions {
	cfg := c.m.cfg
	s := c.settings
	id := c.id.ClientID
	clean := s.CleanStart
	if id == "" {
		id, clean = randomClientID(), true
	}
	o := paho.NewClientOptions()
	// The URL is never dialled: the custom open function does it with our
	// dialer (unix sockets, SOCKS5, trust stores, socket options).
	o.AddBroker((&url.URL{Scheme: "tcp", Host: "ss.invalid:1883"}).String())
	o.SetClientID(id)
	o.SetUsername(c.id.Username)
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
	o.SetDefaultPublishHandler(c.route)
	o.SetConnectionLostHandler(func(_ paho.Client, err error) { c.lost(err) })
	o.SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(c.m.ctx, cfg.ConnectTimeout)
		defer cancel()
		nc, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		bc := &bufferedConn{Conn: nc, r: bufio.NewReaderSize(nc, 4096), c: c}
		c.mu.Lock()
		c.nc = bc
		c.mu.Unlock()
		return bc, nil
	})
	return o
}

// bufferedConn is the network connection paho uses. It reads through a
// buffer (paho reads each packet's fixed header one byte at a time, a system
// call per byte on a bare socket), serialises writes so that a PINGREQ can be
// slipped in between paho's packets (paho writes each packet with one Write),
// and tells the connection when bytes arrive while a ping is pending.
type bufferedConn struct {
	net.Conn
	r   *bufio.Reader
	c   *conn
	wmu sync.Mutex
}

func (b *bufferedConn) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 && b.c.pings.Load() > 0 {
		b.c.pinged()
	}
	return n, err
}

func (b *bufferedConn) Write(p []byte) (int, error) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	return b.Conn.Write(p)
}
