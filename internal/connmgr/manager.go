package connmgr

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/securestreams/ss/actor"
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
	// ErrRestarted is wrapped (with ErrConnectionLost) when a connection
	// actor was restarted by its supervisor after a panic: the broker
	// connection it held was dropped.
	ErrRestarted = errors.New("ss: mqtt connection actor restarted after a panic")
)

// Identity is a broker identity (docs/streams.md §12.2): streams with equal
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
	WSPath     string // MQTT over WebSocket to this path (policy mqtt_ws_path), "" for plain MQTT
}

// String renders the identity for logs and errors.
func (id Identity) String() string {
	s := id.Network + ":" + id.Address
	if id.TLS {
		s += " tls"
	}
	if id.WSPath != "" {
		s += " ws " + strconv.Quote(id.WSPath)
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
	// PasswordIsToken: the password is an auth token (a JWT or LWA token
	// from the stream's use_auth scheme) that is refreshed while the
	// connection is up, so streams holding a newer one still share it;
	// the next connection is opened with the token current then.
	PasswordIsToken bool
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
	// RxQueue is each attachment's receive queue length in messages, and
	// the number of PUBLISHes a connection actor may have waiting in its
	// mailbox before the connection stops reading from the broker; default
	// 256.
	RxQueue int
	// RxStall is how long an attachment's full receive queue may hold up the
	// connection's reader before the attachment is evicted, default 5 s.
	RxStall time.Duration
	// Quiesce bounds the wait for DISCONNECT to be written, default 1 s.
	Quiesce time.Duration
	// Actors is the actor system the manager and its connection actors run
	// in; nil creates a private one (shut down by Close).
	Actors *actor.System
}

// Supervision of the connection actors: a connection actor that panics is
// restarted; one that panics more than maxRestarts times within
// restartWindow is stopped (its attachments end with ErrClosed).
const (
	maxRestarts   = 10
	restartWindow = 10 * time.Second
)

// Manager owns the shared broker connections of one runtime. It is an
// actor (the manager) with one child actor per broker connection; its
// methods send messages to them and never hold a lock across the network.
type Manager struct {
	cfg Config
	log *slog.Logger

	sys    *actor.System
	ownSys bool
	pid    *actor.PID // the manager actor; nil when it could not be spawned

	ctx    context.Context // cancelled by Close; bounds dialing
	cancel context.CancelFunc

	closing   chan struct{} // closed when Close starts
	closeOnce sync.Once
	stopped   chan struct{} // closed when the manager actor has stopped
	stopOnce  sync.Once
	wg        sync.WaitGroup // connect and disconnect goroutines

	conns  atomic.Int32 // connections in use (see Connections)
	opened atomic.Int32 // broker connections opened in total
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
	m := &Manager{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel, sys: cfg.Actors,
		closing: make(chan struct{}), stopped: make(chan struct{})}
	if m.sys == nil {
		m.sys, m.ownSys = actor.NewSystem(cfg.Logger), true
	}
	ma := &managerActor{m: m, conns: map[Identity]*entry{}, byPID: map[string]*entry{}}
	props := actor.Supervised(actor.PropsFromReceiver(ma),
		actor.OneForOne(maxRestarts, restartWindow, actor.Always(actor.Restart)))
	pid, err := m.sys.Spawn(props, "ss-mqtt-")
	if err != nil {
		// Only a system already shut down refuses: the manager starts closed.
		m.log.Warn("ss: mqtt connection manager not started", "err", err)
		m.closeOnce.Do(func() { close(m.closing) })
		m.stopOnce.Do(func() { close(m.stopped) })
		cancel()
		return m
	}
	m.pid = pid
	return m
}

// Connections returns the number of broker connections in use: with
// attachments, or being opened for an Attach. A connection stops counting
// when its last attachment has detached (its DISCONNECT may still be under
// way; Close waits for it).
func (m *Manager) Connections() int { return int(m.conns.Load()) }

// Opened returns how many broker connections this Manager has opened in total.
func (m *Manager) Opened() int { return int(m.opened.Load()) }

// ask sends msg to the actor to and waits for the reply on reply, bounded
// by ctx, Close, the manager stopping and extra.
func ask[T any](ctx context.Context, m *Manager, to *actor.PID, msg any, reply chan T, extra <-chan struct{}) (T, error) {
	var zero T
	select {
	case <-m.closing:
		return zero, ErrClosed
	default:
	}
	m.sys.Tell(to, msg)
	select {
	case r := <-reply:
		return r, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-m.closing:
		return zero, ErrClosed
	case <-m.stopped: // the actor system was shut down under the manager
		return zero, ErrClosed
	case <-extra:
		return zero, errGone
	}
}

// errGone: the attachment ended while a request was under way.
var errGone = errors.New("ss: mqtt attachment ended")

// CheckCompatible returns a *MismatchError when a broker connection for id is
// open (or opening) with connection-level settings that disagree with s. The
// runtime may call it when a stream is created, to fail early; Attach makes
// the same check.
func (m *Manager) CheckCompatible(id Identity, s Settings) error {
	reply := make(chan error, 1)
	err, aerr := ask(context.Background(), m, m.pid, mCheck{id: id, s: s, reply: reply}, reply, nil)
	if aerr != nil {
		return nil // closed: Attach will say so
	}
	return err
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
	if have.Password != want.Password && !(have.PasswordIsToken && want.PasswordIsToken) {
		return mis("password", "(hidden)", "(a different one)")
	}
	return nil
}

// Attach finds the broker connection for req.Identity or opens one, waits
// until it is up (CONNACK) and returns an attachment to it. ctx bounds the
// wait; the connection attempt itself is bounded by Config.ConnectTimeout.
// Every successful Attach must be followed by Detach.
func (m *Manager) Attach(ctx context.Context, req Request) (*Attachment, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := &waiter{reply: make(chan attachReply, 1)}
	r, err := ask(ctx, m, m.pid, mAttach{req: req, w: w}, w.reply, nil)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			// Withdraw the request; an attachment made meanwhile is detached.
			m.sys.Tell(m.pid, mCancel{w: w})
		}
		return nil, err
	}
	return r.a, r.err
}

// PanicConnection makes the actor of the broker connection for id panic, as
// a bug in it would (fault injection for supervision tests and drills). Its
// supervisor restarts it: the broker connection is dropped, its
// attachments end with an error wrapping ErrConnectionLost and
// ErrRestarted, and their streams attach again through their retry policy.
// It reports whether such a connection actor exists.
func (m *Manager) PanicConnection(id Identity) bool {
	reply := make(chan bool, 1)
	ok, err := ask(context.Background(), m, m.pid, mPanic{id: id, reply: reply}, reply, nil)
	return err == nil && ok
}

// Close disconnects every broker connection and waits (bounded by ctx) until
// their actors and goroutines have ended. Attachments see ErrClosed.
// Idempotent.
func (m *Manager) Close(ctx context.Context) error {
	m.closeOnce.Do(func() {
		close(m.closing)
		m.cancel()
		if m.pid != nil {
			m.sys.Stop(m.pid) // stops the connection actors first
		}
	})
	select {
	case <-m.stopped:
	case <-ctx.Done():
		return ctx.Err()
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if m.ownSys {
		return m.sys.Shutdown(ctx)
	}
	return nil
}

func randomClientID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "ss-" + hex.EncodeToString(b[:])
}
