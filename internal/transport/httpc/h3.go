package httpc

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/securestreams/ss/internal/transport"
)

// h3Pool holds the shared HTTP/3 connections of one Client.
type h3Pool struct {
	t    *http3.Transport // used only to make ClientConns
	qcfg *quic.Config
	pool *connPool
}

func newH3Pool(env *transport.Env) *h3Pool {
	return &h3Pool{
		t: &http3.Transport{DisableCompression: true, Logger: env.Logger},
		qcfg: &quic.Config{
			// Validity keep-alive: QUIC PINGs while the connection is held.
			KeepAlivePeriod: 15 * time.Second,
		},
		pool: newConnPool(env.SharedIdleTimeout),
	}
}

func (p *h3Pool) close() { p.pool.close() }

type h3Conn struct {
	pc   net.PacketConn
	qt   *quic.Transport
	qc   *quic.Conn
	cc   *http3.ClientConn
	once sync.Once
}

func (c *h3Conn) usable() bool { return c.qc.Context().Err() == nil }

func (c *h3Conn) close() {
	c.once.Do(func() {
		c.qc.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
		c.qt.Close()
		c.pc.Close()
	})
}

// dialH3 opens a QUIC connection (ALPN h3) on its own UDP socket.
func (r *run) dialH3(ctx context.Context, ep *transport.Endpoint) (*h3Conn, error) {
	if ep.Network != "tcp" {
		return nil, fmt.Errorf("%w: h3 over a unix socket", ErrUnsupported)
	}
	if r.a.Type.ViaSOCKS5 != "" {
		return nil, fmt.Errorf("%w: h3 through SOCKS5", ErrUnsupported)
	}
	t := &r.timing
	ip := net.ParseIP(ep.Host)
	if ip == nil {
		start := time.Now()
		addrs, err := net.DefaultResolver.LookupHost(ctx, ep.Host)
		t.DNS = time.Since(start)
		if err != nil {
			t.DNSDisp = 3
			if de, ok := err.(*net.DNSError); ok && (de.IsTimeout || de.IsTemporary) {
				t.DNSDisp = 2
			}
			return nil, err
		}
		t.DNSDisp = 1
		t.DNSAddrs = addrs
		ip = net.ParseIP(addrs[0])
		if ip == nil {
			t.DNSDisp = 3
			return nil, fmt.Errorf("ss: h3: no usable address for %s", ep.Host)
		}
	} else {
		t.DNSAddrs = []string{ep.Host}
	}
	t.Peer = ip.String()
	laddr := ":0"
	switch {
	case ip.IsLoopback() && ip.To4() != nil:
		laddr = "127.0.0.1:0"
	case ip.IsLoopback():
		laddr = "[::1]:0"
	}
	tlsCfg, err := transport.TLSConfig(r.a, ep, []string{http3.NextProtoH3})
	if err != nil {
		return nil, err
	}
	pc, err := r.env.ListenPacket("udp", laddr)
	if err != nil {
		return nil, err
	}
	silenceQUICBufferWarning()
	qt := &quic.Transport{Conn: pc}
	start := time.Now()
	qc, err := qt.Dial(ctx, &net.UDPAddr{IP: ip, Port: ep.Port}, tlsCfg, r.c.h3.qcfg)
	if err != nil {
		qt.Close()
		pc.Close()
		return nil, fmt.Errorf("%w: quic handshake with %s: %w", transport.ErrTLS, net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port)), err)
	}
	t.TLS = time.Since(start)
	return &h3Conn{pc: pc, qt: qt, qc: qc, cc: r.c.h3.t.NewClientConn(qc)}, nil
}

// exchangeH3 runs req as one request stream of the shared QUIC connection
// of its identity.
func (r *run) exchangeH3(ctx context.Context, req *outRequest) (*exchange, error) {
	p := r.c.h3
	ep := *req.ep
	ep.TLS = true // h3 is always TLS
	req.ep = &ep
	e, reused, err := p.pool.get(ctx, identityKey(r.a, &ep), func() (sharedConn, string, error) {
		dctx, cancel := transport.CutTimeout(ctx, r.sink, r.env.ConnectTimeout)
		defer cancel()
		c, err := r.dialH3(dctx, &ep)
		if err != nil {
			return nil, "", err
		}
		return c, r.timing.Peer, nil
	})
	if err != nil {
		return nil, err
	}
	return r.roundTripShared(ctx, req, p.pool, e, reused, e.conn.(*h3Conn).cc.RoundTrip)
}

var quietQUIC sync.Once

// silenceQUICBufferWarning keeps quic-go from printing its UDP buffer-size
// warning with the standard logger (the library never prints): quic-go has no
// option for it but an environment variable, which we set only when the
// application has not set it itself.
func silenceQUICBufferWarning() {
	quietQUIC.Do(func() {
		const name = "QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING"
		if _, ok := os.LookupEnv(name); !ok {
			_ = os.Setenv(name, "true")
		}
	})
}
