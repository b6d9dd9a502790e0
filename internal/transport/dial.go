package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/proxy"

	"github.com/securestreams/ss/policy"
)

// ErrTLS is wrapped by TLS setup and handshake failures.
var ErrTLS = errors.New("ss: tls")

// Timing records connection-establishment times for perf reports (docs/streams.md §14).
type Timing struct {
	Peer        string
	DNS         time.Duration
	DNSDisp     int // 0 no lookup, 1 results, 2 DNS unreachable, 3 no usable result
	SockConnect time.Duration
	TLS         time.Duration
	DNSAddrs    []string
}

// DialOptions adjust Dial for one protocol.
type DialOptions struct {
	// ALPN protocols offered on TLS connections (nil: none).
	ALPN []string
	// NoTLS dials the plain socket even when the endpoint says TLS (the
	// caller does TLS itself).
	NoTLS bool
}

// Dial opens the connection for an attempt: unix or TCP (through SOCKS5 when
// the streamtype has via-socks5), applies the attr_* socket options, then
// TLS when the endpoint asks for it. The timing is filled as far as it got.
func Dial(ctx context.Context, a *Attempt, ep *Endpoint, opt DialOptions, t *Timing) (net.Conn, error) {
	env := a.Env
	if t == nil {
		t = &Timing{}
	}
	st := a.Type
	dial := env.DialContext
	if socks := st.ViaSOCKS5; socks != "" && ep.Network == "tcp" {
		d, err := socksDialer(socks, dial)
		if err != nil {
			return nil, err
		}
		dial = d
	}
	addr := ep.Address
	if ep.Network == "tcp" && st.ViaSOCKS5 == "" {
		// Resolve here so perf gets DNS timing and the address list.
		if ip := net.ParseIP(ep.Host); ip == nil {
			start := time.Now()
			addrs, err := net.DefaultResolver.LookupHost(ctx, ep.Host)
			t.DNS = time.Since(start)
			if err != nil {
				t.DNSDisp = 3
				var de *net.DNSError
				if errors.As(err, &de) && (de.IsTimeout || de.IsTemporary) {
					t.DNSDisp = 2
				}
				return nil, err
			}
			t.DNSDisp = 1
			t.DNSAddrs = addrs
		} else {
			t.DNSAddrs = []string{ep.Host}
		}
	}
	start := time.Now()
	var conn net.Conn
	var err error
	if len(t.DNSAddrs) > 0 {
		for _, ip := range t.DNSAddrs {
			addr = net.JoinHostPort(ip, strconv.Itoa(ep.Port))
			t.Peer = ip
			conn, err = dial(ctx, ep.Network, addr)
			if err == nil || ctx.Err() != nil {
				break
			}
		}
	} else {
		conn, err = dial(ctx, ep.Network, addr)
	}
	t.SockConnect = time.Since(start)
	if err != nil {
		return nil, err
	}
	applySocketOptions(a, conn)
	if !ep.TLS || opt.NoTLS {
		return conn, nil
	}
	cfg, err := TLSConfig(a, ep, opt.ALPN)
	if err != nil {
		conn.Close()
		return nil, err
	}
	start = time.Now()
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: handshake with %s%s: %w", ErrTLS, ep.Address, peerSubject(err), err)
	}
	t.TLS = time.Since(start)
	return tc, nil
}

// TLSConfig builds the client TLS configuration: the streamtype's trust store
// only when it names one (no fallback to the OS roots), else the OS roots (or
// Env.SystemRoots); the client certificate slot; ALPN.
func TLSConfig(a *Attempt, ep *Endpoint, alpn []string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: ep.ServerName, NextProtos: alpn, MinVersion: tls.VersionTLS12}
	var roots *x509.CertPool
	if ts := a.Type.TrustStore; ts != nil {
		roots = ts.Pool
		if roots == nil {
			roots = x509.NewCertPool()
			for _, c := range ts.Stack {
				if c.Certificate != nil {
					roots.AddCert(c.Certificate)
				}
			}
		}
	} else if a.Env.SystemRoots != nil {
		roots = a.Env.SystemRoots
	}
	cfg.RootCAs = roots // nil: OS roots
	if slot := a.Type.ClientCert; slot >= 0 && a.Env.ClientCert != nil {
		cert, err := a.Env.ClientCert(slot)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate slot %d: %w", ErrTLS, slot, err)
		}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
	}
	return cfg, nil
}

// SOCKS5Dialer returns a dialer that reaches TCP addresses through the
// SOCKS5 server spec ("[user[:password]@]host:port"), connecting to it with
// forward. Host names are resolved by the SOCKS server.
func SOCKS5Dialer(spec string, forward func(ctx context.Context, network, addr string) (net.Conn, error)) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	return socksDialer(spec, forward)
}

func socksDialer(spec string, forward func(ctx context.Context, network, addr string) (net.Conn, error)) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	var auth *proxy.Auth
	hostport := spec
	if i := strings.LastIndexByte(spec, '@'); i >= 0 {
		up := spec[:i]
		hostport = spec[i+1:]
		auth = &proxy.Auth{User: up}
		if j := strings.IndexByte(up, ':'); j >= 0 {
			auth.User, auth.Password = up[:j], up[j+1:]
		}
	}
	d, err := proxy.SOCKS5("tcp", hostport, auth, contextDialer(forward))
	if err != nil {
		return nil, fmt.Errorf("ss: via-socks5 %q: %w", spec, err)
	}
	cd, ok := d.(proxy.ContextDialer)
	if !ok {
		return nil, fmt.Errorf("ss: via-socks5 %q: dialer has no DialContext", spec)
	}
	return cd.DialContext, nil
}

type contextDialer func(ctx context.Context, network, addr string) (net.Conn, error)

func (d contextDialer) Dial(network, addr string) (net.Conn, error) {
	return d(context.Background(), network, addr)
}

func (d contextDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d(ctx, network, addr)
}

// TOS returns the IP ToS byte the attr_* keys of st ask for: low delay
// 0x10, throughput 0x08, reliability 0x04. attr_low_cost (RFC 1349 "min
// cost", 0x02) is not included: that bit is now half of the ECN field,
// which Linux keeps for itself on TCP sockets (and which would mark QUIC
// packets ECN-capable), so the policy parser warns that the key has no
// effect (docs/lws-differences.md).
func TOS(st *policy.Streamtype) int {
	tos := 0
	if st.AttrLowLatency {
		tos |= 0x10
	}
	if st.AttrHighThroughput {
		tos |= 0x08
	}
	if st.AttrHighReliability {
		tos |= 0x04
	}
	return tos
}

// applySocketOptions sets the IP ToS bits and SO_PRIORITY from the attr_*
// keys, best effort: failures are logged, never fatal. ToS goes first:
// on Linux setting IP_TOS also resets the socket priority (to the ToS
// precedence), so attr_priority is applied after it and both hold.
func applySocketOptions(a *Attempt, conn net.Conn) {
	st := a.Type
	tos := TOS(st)
	if tos == 0 && st.AttrPriority == 0 {
		return
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	ipv6 := false
	if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok && ta.IP.To4() == nil {
		ipv6 = true
	}
	_ = raw.Control(func(fd uintptr) {
		if tos != 0 {
			var err error
			if ipv6 {
				err = setsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_TCLASS, tos)
			} else {
				err = setsockoptInt(fd, syscall.IPPROTO_IP, syscall.IP_TOS, tos)
			}
			if err != nil {
				a.Env.Logger.Debug("ss: IP ToS not set", "stream", a.StreamID, "err", err)
			}
		}
		if st.AttrPriority != 0 {
			if err := setPriority(fd, int(st.AttrPriority)); err != nil {
				a.Env.Logger.Debug("ss: SO_PRIORITY not set", "stream", a.StreamID, "err", err)
			}
		}
	})
}

func setsockoptInt(fd uintptr, level, opt, v int) error {
	return syscall.SetsockoptInt(int(fd), level, opt, v)
}

// IsTLSVerifyError reports whether err is a certificate verification failure.
func IsTLSVerifyError(err error) bool {
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ce x509.CertificateInvalidError
	var ve *tls.CertificateVerificationError
	return errors.As(err, &ue) || errors.As(err, &he) || errors.As(err, &ce) || errors.As(err, &ve)
}
