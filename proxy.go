package ss

import (
	"context"
	"fmt"
	"net"

	"github.com/securestreams/ss/internal/event"
	iproxy "github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/internal/ssbridge"
	"github.com/securestreams/ss/internal/stream"
	"github.com/securestreams/ss/policy"
)

// ServeProxy runs an SS proxy (docs/wire.md) on ln: every link a proxied client
// opens is fulfilled by a client stream of rt, created from rt's policy and
// destroyed when the link closes. It returns nil once ctx is done (after
// closing ln and every link), or the listener's error. Each onward stream's buffers come from its
// streamtype (docs/wire.md §7.2): its transmit queue holds at most proxy_buflen
// bytes, its receive queue at most proxy_buflen_rxflow_on_above, and the
// link stops draining it while on_above bytes wait for the client, until
// they fall below proxy_buflen_rxflow_off_below (Config.TxBuffer and
// RxBuffer do not apply to onward streams).
// After Close it returns ErrClosed (and closes ln).
func (rt *Runtime) ServeProxy(ctx context.Context, ln net.Listener) error {
	if err := rt.checkOpen(); err != nil {
		ln.Close()
		return err
	}
	return rt.proxyServer().Serve(ctx, ln)
}

// proxyServer returns an SS proxy server whose onward streams are rt's
// streams (cmd/ssproxy reaches it through internal/ssbridge to set limits).
func (rt *Runtime) proxyServer() *iproxy.Server {
	return &iproxy.Server{Onward: onward{rt}, Logger: rt.env.Logger, Limits: rt.proxyLimits}
}

func init() {
	ssbridge.ProxyServer = func(rt any) *iproxy.Server { return rt.(*Runtime).proxyServer() }
	ssbridge.TxCredit = func(s any) int64 { return s.(*Stream).txCredit() }
	ssbridge.EstPeerTxCredit = func(s any) int64 { return s.(*Stream).estPeerTxCredit() }
	ssbridge.AddPeerTxCredit = func(s any, n int32) { s.(*Stream).addPeerTxCredit(n) }
}

// onward adapts a Runtime to iproxy.Onward.
type onward struct{ rt *Runtime }

func (o onward) Create(ctx context.Context, req iproxy.CreateRequest) (iproxy.OnwardStream, iproxy.OnwardInfo, error) {
	var info iproxy.OnwardInfo
	if o.rt.proxy != nil {
		return nil, info, fmt.Errorf("%w: a proxied runtime cannot serve as a proxy", ErrUnsupportedProtocol)
	}
	cfg, err := o.rt.clientConfig(ctx, req.Streamtype, nil)
	if err != nil {
		return nil, info, err
	}
	// A proxied client's misframed ws chunk is dropped and logged by the
	// transport (the pull-mode rule of docs/streams.md §11.6), not an error that
	// would close the link; the client refuses it at send time when its own
	// policy knows the streamtype.
	cfg.Framing = nil
	st := cfg.Type
	buflen, on, off := st.ProxyBuffer()
	// Per stream (docs/wire.md §7.2): the onward stream queues at most
	// proxy_buflen bytes of client data (a full queue stops the link's
	// reads) and at most on_above bytes of received payload (a full queue
	// stops its reads of the peer while the link holds on_above for the
	// client).
	cfg.TxBudget, cfg.RxBudget = int(buflen), int(on)
	// The link writes the events to its client from the goroutine that
	// produced them (no forwarding goroutine per link).
	cfg.Deliver = req.Deliver
	info.Delivers = req.Deliver != nil
	// Its lifecycle runs from a mailbox of its own, not a protoactor
	// actor: nothing supervises an onward stream but its link, and an
	// actor would be a third of its memory (PERFORMANCE.md, "Memory per
	// proxied stream").
	cfg.OwnMailbox = true
	// Its plain onward connections are parked in the link's event loop.
	if req.Poller != nil {
		cfg.Poller = req.Poller
	}
	ss, err := stream.New(o.rt.host, cfg)
	if err != nil {
		return nil, info, err
	}
	s := &Stream{s: ss}
	for r := st; r != nil && len(info.Rideshares) < 8; r = r.Rideshare {
		info.Rideshares = append(info.Rideshares, r.Name)
	}
	info.ClientBuflen = st.ClientBuflen
	info.ProxyBuflen, info.RxflowOnAbove, info.RxflowOffBelow = int(buflen), int(on), int(off)
	for _, m := range st.Metadata {
		info.Metadata = append(info.Metadata, m.Name)
	}
	switch st.HTTPMethod {
	case "POST", "PUT", "PATCH":
		info.EarlyConnected = st.IsHTTP()
	}
	return onwardStream{s}, info, nil
}

// onwardStream is a Stream as iproxy.OnwardStream wants it (the proxy's
// calls carry a ctx; the Stream's non-blocking ones take none).
type onwardStream struct{ *Stream }

func (o onwardStream) RequestTx(context.Context) error { return o.Stream.RequestTx() }
func (o onwardStream) Connect(context.Context) error   { return o.Stream.Connect() }

// TryWrite lets the proxy's event loop queue payload without waiting.
func (o onwardStream) TryWrite(p []byte, flags event.Flags) (bool, error) {
	return o.Stream.s.TryWrite(p, flags)
}

// initProxy makes rt a proxied client when cfg.Proxy is set.
func (rt *Runtime) initProxy(cfg *Config) error {
	if cfg.Proxy == "" {
		return nil
	}
	addr, dial, err := proxyRoute(cfg.Proxy, cfg.DialContext) // socks5:// (socks.go)
	if err != nil {
		return err
	}
	c, err := iproxy.NewClient(iproxy.ClientConfig{Address: addr, DialContext: dial, MaxTxFrame: cfg.ProxyTxFrame})
	if err != nil {
		return err
	}
	rt.proxy = c
	if cfg.Policy == nil {
		cfg.Policy = &policy.Policy{SchemaVersion: 1}
	}
	return nil
}

// remoteDriver adapts a proxied stream's link to stream.RemoteDriver.
type remoteDriver struct{ *iproxy.ClientStream }

func (d remoteDriver) Start(r *stream.Remote) { d.ClientStream.Start(r) }

// createProxied creates a stream fulfilled by the proxy (docs/streams.md §16):
// its events come from the proxy link, after its CREATING, which is queued
// at once like a local stream's (docs/stream-states.md);
// UPSTREAM_LINK_RETRY follows while the proxy cannot be reached.
// The local policy, when it has the streamtype, is used for checks
// (server streamtypes, declared metadata) and the streamtype's properties;
// otherwise the proxy's policy alone decides.
func (rt *Runtime) createProxied(ctx context.Context, name string, opts []Option) (*Stream, error) {
	pol := rt.pol.Load()
	st := pol.Streamtype(name)
	local := st != nil
	if local && st.Server {
		return nil, fmt.Errorf("%w: %q is a server streamtype and cannot be proxied", ErrServerStreamtype, name)
	}
	if !local {
		st = &policy.Streamtype{Name: name, ClientCert: -1}
	}
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	cs, err := rt.proxy.NewStream(name)
	if err != nil {
		return nil, err
	}
	px := &proxied{cs: cs, st: st, local: local}
	for _, m := range o.metadata {
		if err := px.setMetadata(m.Name, m.Value); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg := stream.Config{Policy: pol, Type: st}
	if local {
		cfg.Framing = txFraming[st.Protocol] // refused at send time, as locally
	}
	s, err := stream.NewRemote(rt.host, cfg, remoteDriver{cs})
	if err != nil {
		return nil, err
	}
	return &Stream{s: s, px: px}, nil
}

// proxied is the proxy-specific part of a proxied Stream.
type proxied struct {
	cs    *iproxy.ClientStream
	st    *policy.Streamtype
	local bool // st comes from the local policy
}

func (p *proxied) setMetadata(name, value string) error {
	if p.local && p.st.MetadataIndex(name) < 0 && !(p.st.DirectProtoStr && len(name) > 1 && name[len(name)-1] == ':') {
		return &stream.MetadataError{Name: name, Streamtype: p.st.Name}
	}
	if check := metadataCheck(metadataChecks, p.st); p.local && check != nil {
		if err := check(name, value); err != nil {
			return err // the proxy would refuse it too
		}
	}
	return p.cs.SetMetadata(name, value)
}

// txCredit returns the advisory transmit credit the onward peer granted a
// proxied stream (TXCR_UPDATE from the proxy) minus the payload sent since
// (docs/wire.md §7.1). Only h2/h3 onward streams produce credit, and nothing
// waits for it: sending never stops when it is exhausted. It is 0 for
// local streams (this runtime's h2/h3 clients do not expose their flow
// control windows).
func (s *Stream) txCredit() int64 {
	if s.px == nil {
		return 0
	}
	return s.px.cs.TxCredit()
}

// estPeerTxCredit returns the advisory estimate of the onward peer's
// credit for a proxied stream: the initial window offered in STREAMTYPE
// (proxy.DefaultCredit unless configured) plus addPeerTxCredit grants,
// minus the payload bytes received (docs/wire.md §7.1). It is 0 for local
// streams.
func (s *Stream) estPeerTxCredit() int64 {
	if s.px == nil {
		return 0
	}
	return s.px.cs.PeerTxCredit()
}

// addPeerTxCredit grants the onward peer n more bytes of receive credit:
// on a proxied stream it is sent as TXCR_UPDATE (0xAF, advisory; docs/wire.md
// §3.6) and added to estPeerTxCredit; on a local stream it does nothing.
// (Proxies, this library's included, may ignore it: see the proxy package
// doc, "Tx credit".)
func (s *Stream) addPeerTxCredit(n int32) {
	if s.px != nil && n != 0 {
		s.px.cs.AddPeerTxCredit(n)
	}
}
