// Package mqtt is the MQTT 3.1.1 transport (docs/streams.md §11.5): each stream
// shares a broker connection managed by connmgr, subscribes its substituted
// mqtt_subscribe filter, publishes each tx message as one PUBLISH on its
// substituted mqtt_topic, and reports QoS acknowledgements with the message's
// 1-based sequence number. With aws_iot, Shadow topics get their
// accepted/rejected responses (§11.5.7).
//
// Within Run, one goroutine makes every Sink call (states and rx stay in
// order) and a second turns tx chunks into PUBLISHes; any number of QoS ≥ 1
// messages may be in flight (Options.MaxInFlight bounds them, which is
// transmit backpressure), and their acknowledgements are reported in publish
// order. When the broker connection is lost, every unacknowledged message is
// reported QOS_NACK_REMOTE before Run returns; the stream's retry policy then
// reattaches (see connmgr).
//
// Sequence numbers count the messages of the stream across its connections
// (kept by Attempt.StreamID). The contract does not say when a stream is
// destroyed, so the count of a stream that stays unconnected for more than
// 10 minutes is forgotten and starts again at 1.
//
// Connection validity (docs/streams.md §7): received messages and acknowledgements
// confirm it, and the stream's ping sends an MQTT PINGREQ (written between
// paho's packets by connmgr) whose answer confirms it.
//
// Not done: DUP re-sends before the ack timeout (optional in the spec).
package mqtt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/securestreams/ss/internal/auth"
	"github.com/securestreams/ss/internal/connmgr"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// Options tune the MQTT transport; the zero value works.
type Options struct {
	// Manager shares broker connections; nil makes the Protocol create its
	// own (closed by Close).
	Manager *connmgr.Manager
	// MaxInFlight bounds the QoS ≥ 1 publishes (and QoS 0 publishes not yet
	// written) one stream may have unacknowledged; further messages wait
	// (transmit backpressure). Default 256.
	MaxInFlight int
	// RxQueue is each stream's receive queue length (messages) when the
	// Protocol creates its Manager; default 256 (see connmgr.Config).
	RxQueue int
}

// Protocol is the mqtt transport.Protocol.
type Protocol struct {
	env         *transport.Env
	mgr         *connmgr.Manager
	ownMgr      bool
	seqs        seqStore
	maxInFlight int
	txs         sync.WaitGroup // tx goroutines, which may outlive their Run briefly
}

var _ transport.Protocol = (*Protocol)(nil)

// New returns the mqtt protocol with its own connection manager, in the
// shape the runtime's protocol registry wants.
func New(env *transport.Env) transport.Protocol { return NewProtocol(env, Options{}) }

// NewProtocol returns the mqtt protocol configured by opt.
func NewProtocol(env *transport.Env, opt Options) *Protocol {
	if env == nil {
		env = &transport.Env{}
	}
	env = env.Defaults()
	p := &Protocol{env: env, mgr: opt.Manager, maxInFlight: opt.MaxInFlight}
	if p.maxInFlight <= 0 {
		p.maxInFlight = 256
	}
	if p.mgr == nil {
		p.mgr = connmgr.New(connmgr.Config{
			Logger: env.Logger, Actors: env.Actors, ConnectTimeout: env.ConnectTimeout, AckTimeout: env.MQTTAckTimeout,
			RxQueue: opt.RxQueue,
		})
		p.ownMgr = true
	}
	return p
}

// Manager returns the connection manager the protocol uses.
func (p *Protocol) Manager() *connmgr.Manager { return p.mgr }

// Close closes the protocol's own connection manager (all broker
// connections) and waits, bounded by ctx, for its goroutines; idempotent.
func (p *Protocol) Close(ctx context.Context) error {
	var err error
	if p.ownMgr {
		err = p.mgr.Close(ctx)
	}
	done := make(chan struct{})
	go func() {
		p.txs.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

// CheckCompatible returns a *connmgr.MismatchError when the stream described
// by a would share a broker connection that is open with different
// connection-level settings (keep alive, clean start, will, password). The
// runtime may call it when a stream is created to fail early; Run fails the
// attempt with the same error.
func (p *Protocol) CheckCompatible(a *transport.Attempt) error {
	ep, err := transport.ResolveEndpoint(a)
	if err != nil {
		return nil // the attempt will report it
	}
	req := p.request(a, ep, nil)
	return p.mgr.CheckCompatible(req.Identity, req.Settings)
}

func (p *Protocol) envOf(a *transport.Attempt) *transport.Env {
	if a.Env != nil {
		return a.Env
	}
	return p.env
}

func expand(t *policy.Template, raw string, a *transport.Attempt) string {
	if t != nil {
		return t.Expand(a.Value)
	}
	return raw
}

// request builds the broker identity and connection settings of a stream.
func (p *Protocol) request(a *transport.Attempt, ep *transport.Endpoint, timing *transport.Timing) connmgr.Request {
	st := a.Type
	env := p.envOf(a)
	id := connmgr.Identity{
		Network: ep.Network, Address: ep.Address, TLS: ep.TLS, ClientCert: -1,
		ClientID: env.MQTTClientID, Username: env.MQTTUsername, WSPath: st.MQTTWSPath,
	}
	if ep.TLS {
		id.ServerName, id.TrustStore, id.ClientCert = ep.ServerName, st.TrustStoreName, st.ClientCert
	}
	if ep.Network == "tcp" {
		id.SOCKS5 = st.ViaSOCKS5
	}
	s := connmgr.Settings{
		Streamtype: st.Name,
		KeepAlive:  st.MQTTKeepAlive,
		CleanStart: st.MQTTCleanStart || env.MQTTClientID == "",
		Password:   env.MQTTPassword,
	}
	if ua := st.UseAuth; ua != nil && ua.Type != policy.AuthSigV4 {
		// Token auth on MQTT: the scheme's token (a JWT, an LWA token) is
		// the CONNECT password (docs/auth.md).
		if tok := env.Token(int(ua.Blob)); len(tok) > 0 {
			s.Password, s.PasswordIsToken = string(tok), true
		}
	}
	if wt := expand(st.MQTTWillTopicTmpl, st.MQTTWillTopic, a); wt != "" {
		s.Will = &connmgr.Will{Topic: wt, Message: expand(st.MQTTWillMessageTmpl, st.MQTTWillMessage, a),
			QoS: st.MQTTWillQoS, Retain: st.MQTTWillRetain}
	}
	da := *a
	da.Env = env
	dial := func(ctx context.Context) (net.Conn, error) { return dialBroker(ctx, &da, ep, timing) }
	return connmgr.Request{Identity: id, Settings: s, Dial: dial}
}

// dialBroker is the one dial step of a broker connection: the connection
// manager calls it (through connmgr.Request.Dial) whenever it opens a new
// broker connection for a's identity. It opens TCP or a unix socket, via
// SOCKS5 when configured, with TLS from the policy (ALPN x-amzn-mqtt-ca for
// AWS IoT), or as MQTT over WebSocket when the streamtype has mqtt_ws_path
// (dialWS: presigned afresh for every connection with a sigv4 use_auth).
func dialBroker(ctx context.Context, a *transport.Attempt, ep *transport.Endpoint, timing *transport.Timing) (net.Conn, error) {
	if a.Type.MQTTWSPath != "" {
		return dialWS(ctx, a, ep, timing)
	}
	var alpn []string
	if a.Type.AWSIoT {
		// AWS IoT on 443: x-amzn-mqtt-ca selects X.509 client certificate
		// auth, mqtt a custom authorizer (named in the user name).
		alpn = []string{auth.ALPNMQTTCA}
		if a.Env != nil && strings.Contains(a.Env.MQTTUsername, "x-amz-customauthorizer-name=") {
			alpn = []string{auth.ALPNMQTT}
		}
	}
	return transport.Dial(ctx, a, ep, transport.DialOptions{ALPN: alpn}, timing)
}

// Run performs one attempt and, once CONNECTED, the stream's share of the
// broker connection (docs/streams.md §11.5).
func (p *Protocol) Run(ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
	env := p.envOf(a)
	st := a.Type
	ep, err := transport.ResolveEndpoint(a)
	if err != nil {
		return transport.Result{Err: err}
	}
	timing := &transport.Timing{}
	req := p.request(a, ep, timing)
	if err := checkConnect(&req, topicMax(st)); err != nil {
		return transport.Result{Err: err}
	}

	actx, cancel := context.WithTimeout(ctx, env.ConnectTimeout)
	defer cancel()
	att, err := p.mgr.Attach(actx, req)
	if err != nil {
		return transport.Result{Err: attemptErr(ctx, err)}
	}
	defer att.Detach()

	if filter := expand(st.MQTTSubscribeTmpl, st.MQTTSubscribe, a); filter != "" {
		resumed := !req.Settings.CleanStart && att.SessionPresent()
		if err := att.Subscribe(actx, filter, st.MQTTQoS, !resumed); err != nil {
			return transport.Result{Err: attemptErr(ctx, err)}
		}
	}
	if bt := expand(st.MQTTBirthTopicTmpl, st.MQTTBirthTopic, a); bt != "" {
		if err := connmgr.ValidTopic(bt, topicMax(st)); err != nil {
			p.unsubscribe(att, env)
			return transport.Result{Err: fmt.Errorf("%w: mqtt_birth_topic: %w", transport.ErrWireValue, err)}
		}
		b := connmgr.Will{Topic: bt, Message: expand(st.MQTTBirthMessageTmpl, st.MQTTBirthMessage, a),
			QoS: st.MQTTBirthQoS, Retain: st.MQTTBirthRetain}
		if err := att.Birth(actx, b); err != nil {
			p.unsubscribe(att, env)
			return transport.Result{Err: attemptErr(ctx, err)}
		}
	}
	if ctx.Err() != nil {
		p.unsubscribe(att, env)
		return transport.Result{Err: context.Cause(ctx)}
	}
	cancel() // the establishment limit ends here
	sink.State(event.Connected, 0)
	if ps, ok := sink.(interface{ SetPing(func()) }); ok {
		// docs/streams.md §7: svalidping sends a PINGREQ; anything the broker
		// sends next confirms the connection.
		ps.SetPing(func() { att.Ping(sink.ValidityConfirmed) })
	}

	s := newSession(p, a, env, sink, att)
	res := s.run(ctx)
	if st.Perf {
		_ = sink.Rx(ctx, transport.PerfReport(timing, 0, -1), event.SOM|event.EOM|event.PerfJSON)
	}
	return res
}

// attemptErr prefers the caller's cancellation over the error it caused.
func attemptErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return context.Cause(ctx)
	}
	return err
}

func (p *Protocol) unsubscribe(att *connmgr.Attachment, env *transport.Env) {
	ctx, cancel := context.WithTimeout(context.Background(), env.MQTTAckTimeout)
	defer cancel()
	if err := att.Unsubscribe(ctx); err != nil {
		env.Logger.Debug("ss: mqtt unsubscribe", "err", err)
	}
}
