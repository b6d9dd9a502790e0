package ss

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/proxy"
)

// socks5Prefix starts a Config.Proxy that reaches the proxy through SOCKS5.
const socks5Prefix = "socks5://"

// proxyRoute splits Config.Proxy into the proxy address and the dialer of
// its links. "socks5://[user[:password]@]host:port/tcp:host:port" reaches
// the tcp: proxy address through that SOCKS5 server (the proxy's host name
// is resolved by the SOCKS server); any other value is the proxy address
// itself, dialed with dial (nil: net.Dialer).
func proxyRoute(addr string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (string, func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	rest, ok := strings.CutPrefix(addr, socks5Prefix)
	if !ok {
		return addr, dial, nil
	}
	socks, target, ok := strings.Cut(rest, "/")
	if !ok || !strings.HasPrefix(target, "tcp:") || socks == "" {
		return "", nil, fmt.Errorf("%w: %q: a socks5:// proxy is written socks5://[user[:password]@]host:port/tcp:host:port", proxy.ErrAddress, redactSOCKS(addr))
	}
	if _, _, err := proxy.ParseAddress(target); err != nil {
		return "", nil, err
	}
	hostport := socks[strings.LastIndexByte(socks, '@')+1:]
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		return "", nil, fmt.Errorf("%w: %q: SOCKS5 server: %v", proxy.ErrAddress, redactSOCKS(addr), err)
	}
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	sd, err := transport.SOCKS5Dialer(socks, dial)
	if err != nil {
		return "", nil, err
	}
	return target, sd, nil
}

// redactSOCKS hides a SOCKS5 password in error messages.
func redactSOCKS(addr string) string {
	rest, _ := strings.CutPrefix(addr, socks5Prefix)
	socks, target, _ := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(socks, '@'); i >= 0 {
		user, _, _ := strings.Cut(socks[:i], ":")
		socks = user + ":***" + socks[i:]
	}
	return socks5Prefix + socks + "/" + target
}
