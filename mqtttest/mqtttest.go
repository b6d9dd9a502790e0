// Package mqtttest runs MQTT brokers for tests, benchmarks and examples: an
// embedded mochi-mqtt broker on a loopback address, and Debian's mosquitto
// started as a separate process with a generated configuration.
package mqtttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// ConnectInfo is what a client sent in CONNECT.
type ConnectInfo struct {
	ClientID   string
	Username   string
	Password   string
	KeepAlive  uint16
	Clean      bool
	WillTopic  string
	WillMsg    string
	WillQoS    byte
	WillRetain bool
	WillFlag   bool
}

// Broker is an embedded mochi-mqtt broker listening on loopback.
type Broker struct {
	Server *mochi.Server
	// Addr is the listening host:port.
	Addr string

	rec *recorder
	ln  net.Listener

	closeOnce sync.Once
	closed    chan struct{}
}

// Start starts an embedded broker on addr, which must be a loopback address
// ("127.0.0.1:0" picks a free port). Every client is allowed.
func Start(addr string) (*Broker, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("mqtttest: %q is not a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return Serve(ln)
}

// Serve starts an embedded broker on a listener the caller opened (a TLS
// listener, a unix socket); Close closes it. Every client is allowed.
func Serve(ln net.Listener) (*Broker, error) {
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	rec := &recorder{}
	for _, h := range []mochi.Hook{new(allowAll), rec} {
		if err := srv.AddHook(h, nil); err != nil {
			ln.Close()
			return nil, err
		}
	}
	if err := srv.AddListener(listeners.NewNet("t", ln)); err != nil {
		ln.Close()
		return nil, err
	}
	if err := srv.Serve(); err != nil {
		ln.Close()
		return nil, err
	}
	return &Broker{Server: srv, Addr: ln.Addr().String(), rec: rec, ln: ln, closed: make(chan struct{})}, nil
}

// Close stops the broker, giving up after ctx is done (mochi's Close can
// hang). Idempotent.
func (b *Broker) Close(ctx context.Context) error {
	b.closeOnce.Do(func() {
		// Stop accepting first: mochi's Close races with a connection being
		// established.
		_ = b.ln.Close()
		time.Sleep(10 * time.Millisecond)
		go func() {
			defer close(b.closed)
			_ = b.Server.Close()
		}()
	})
	select {
	case <-b.closed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqtttest: broker close: %w", ctx.Err())
	}
}

// Port returns the listening port.
func (b *Broker) Port() int {
	_, p, _ := net.SplitHostPort(b.Addr)
	var n int
	fmt.Sscan(p, &n)
	return n
}

// Connects returns the CONNECTs the broker accepted, in order.
func (b *Broker) Connects() []ConnectInfo {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return append([]ConnectInfo(nil), b.rec.connects...)
}

// Connected returns the number of clients connected now.
func (b *Broker) Connected() int {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return b.rec.connected
}

// Disconnects returns the number of client connections that ended.
func (b *Broker) Disconnects() int {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return b.rec.disconnects
}

// Subscribes returns every filter subscribed by a network client, in order.
func (b *Broker) Subscribes() []string {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return append([]string(nil), b.rec.subscribes...)
}

// Unsubscribes returns every filter unsubscribed by a network client, in order.
func (b *Broker) Unsubscribes() []string {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return append([]string(nil), b.rec.unsubscribes...)
}

// Publish publishes from the broker itself (inline client).
func (b *Broker) Publish(topic string, payload []byte, retain bool, qos byte) error {
	return b.Server.Publish(topic, payload, retain, qos)
}

// Received is one message seen by a Collect subscription.
type Received struct {
	Topic   string
	Payload []byte
	Retain  bool
	QoS     byte
}

// Collector records what the broker routes to an inline subscription.
type Collector struct {
	mu   sync.Mutex
	msgs []Received
	ch   chan struct{}
}

// Collect subscribes the broker's inline client to filter.
func (b *Broker) Collect(filter string) (*Collector, error) {
	c := &Collector{ch: make(chan struct{}, 1)}
	b.rec.mu.Lock()
	b.rec.subID++
	id := b.rec.subID
	b.rec.mu.Unlock()
	err := b.Server.Subscribe(filter, id, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		c.mu.Lock()
		c.msgs = append(c.msgs, Received{Topic: pk.TopicName, Payload: bytes.Clone(pk.Payload), Retain: pk.FixedHeader.Retain, QoS: pk.FixedHeader.Qos})
		c.mu.Unlock()
		select {
		case c.ch <- struct{}{}:
		default:
		}
	})
	return c, err
}

// Messages returns the messages collected so far.
func (c *Collector) Messages() []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Received(nil), c.msgs...)
}

// Wait waits until at least n messages were collected.
func (c *Collector) Wait(ctx context.Context, n int) ([]Received, error) {
	for {
		if m := c.Messages(); len(m) >= n {
			return m, nil
		}
		select {
		case <-c.ch:
		case <-ctx.Done():
			return c.Messages(), errors.New("mqtttest: timed out waiting for messages")
		}
	}
}

type recorder struct {
	mochi.HookBase
	mu           sync.Mutex
	connects     []ConnectInfo
	connected    int
	disconnects  int
	subscribes   []string
	unsubscribes []string
	subID        int
}

func (r *recorder) ID() string { return "mqtttest-recorder" }

func (r *recorder) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnSessionEstablished, mochi.OnDisconnect, mochi.OnSubscribed, mochi.OnUnsubscribed}, []byte{b})
}

func (r *recorder) OnSessionEstablished(cl *mochi.Client, pk packets.Packet) {
	c := pk.Connect
	r.mu.Lock()
	defer r.mu.Unlock()
	r.connected++
	r.connects = append(r.connects, ConnectInfo{
		ClientID: c.ClientIdentifier, Username: string(c.Username), Password: string(c.Password),
		KeepAlive: c.Keepalive, Clean: c.Clean, WillFlag: c.WillFlag, WillTopic: c.WillTopic,
		WillMsg: string(c.WillPayload), WillQoS: c.WillQos, WillRetain: c.WillRetain,
	})
}

func (r *recorder) OnDisconnect(cl *mochi.Client, err error, expire bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.connected--
	r.disconnects++
}

func (r *recorder) OnSubscribed(cl *mochi.Client, pk packets.Packet, reasonCodes []byte) {
	if cl.Net.Inline {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range pk.Filters {
		r.subscribes = append(r.subscribes, f.Filter)
	}
}

func (r *recorder) OnUnsubscribed(cl *mochi.Client, pk packets.Packet) {
	if cl.Net.Inline {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range pk.Filters {
		r.unsubscribes = append(r.unsubscribes, f.Filter)
	}
}

// allowAll lets every client connect, publish and subscribe (mochi's own
// auth.AllowHook package pulls in a YAML dependency we do not carry).
type allowAll struct{ mochi.HookBase }

func (h *allowAll) ID() string { return "mqtttest-allow-all" }

func (h *allowAll) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (h *allowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }

func (h *allowAll) OnACLCheck(*mochi.Client, string, bool) bool { return true }
