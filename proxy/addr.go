package proxy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// DefaultAddress is where lws proxies listen and lws clients connect on
// Linux: the abstract unix socket "@proxy.ss.lws" (docs/wire.md §2.1).
const DefaultAddress = "unix:@proxy.ss.lws"

// ErrAddress: a proxy address is malformed.
var ErrAddress = errors.New("ss: proxy: bad address")

// ParseAddress splits a proxy address into the network and address for
// net.Dial / net.Listen. Accepted forms: "unix:@name" (abstract socket),
// "unix:/path", "tcp:host:port", and the bare forms "@name", "/path",
// "+@name" / "+/path" (lws configuration spelling) and "host:port". ""
// means DefaultAddress.
func ParseAddress(s string) (network, addr string, err error) {
	if s == "" {
		s = DefaultAddress
	}
	switch {
	case strings.HasPrefix(s, "unix:"):
		network, addr = "unix", s[len("unix:"):]
	case strings.HasPrefix(s, "tcp:"):
		network, addr = "tcp", s[len("tcp:"):]
	case strings.HasPrefix(s, "+"):
		network, addr = "unix", s[1:]
	case strings.HasPrefix(s, "@"), strings.HasPrefix(s, "/"), strings.HasPrefix(s, "."):
		network, addr = "unix", s
	default:
		network, addr = "tcp", s
	}
	if addr == "" || addr == "@" {
		return "", "", fmt.Errorf("%w: %q: empty socket name", ErrAddress, s)
	}
	if network == "tcp" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", "", fmt.Errorf("%w: %q: %v", ErrAddress, s, err)
		}
	}
	return network, addr, nil
}

// Listen opens the proxy's listener for address (see ParseAddress). For a
// filesystem socket it removes a stale socket file first and sets mode 0660
// (docs/wire.md §2.1).
func Listen(address string) (net.Listener, error) {
	network, addr, err := ParseAddress(address)
	if err != nil {
		return nil, err
	}
	fsock := network == "unix" && !strings.HasPrefix(addr, "@")
	if fsock {
		if fi, err := os.Lstat(addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(addr)
		}
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	if fsock {
		_ = os.Chmod(addr, 0o660)
	}
	return ln, nil
}
