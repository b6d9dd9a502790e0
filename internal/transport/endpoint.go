package transport

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/securestreams/ss/policy"
)

// ErrEndpoint is wrapped by every endpoint resolution failure.
var ErrEndpoint = errors.New("ss: unusable endpoint")

// Endpoint is a resolved client endpoint (docs/streams.md §11.1).
type Endpoint struct {
	Network string // "tcp" or "unix"
	// Address for net.Dial: "host:port", a socket path, or "@name" for a
	// Linux abstract socket.
	Address string
	Host    string // host without brackets ("" for unix sockets)
	Port    int
	TLS     bool
	// ServerName is the TLS server name: the host, or "localhost" on unix sockets.
	ServerName string
	// Path is the request path and query after the §11.2.1 rules ("/..."):
	// the URL path when the endpoint was a URL with a path, else http_url.
	Path string
	// Scheme is the URL scheme when the endpoint was a URL, else "".
	Scheme string
}

// HostPort returns host:port with IPv6 hosts bracketed (for Host headers the
// caller may drop default ports itself).
func (e *Endpoint) HostPort() string {
	if e.Network == "unix" {
		return "localhost"
	}
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// ResolveEndpoint substitutes metadata into the streamtype's endpoint and
// http_url and resolves the endpoint form of docs/streams.md §11.1. Values
// substituted into a path or query are percent-encoded unless their item
// is url_preencoded; values that cannot be used where they land fail with
// a *ValueError naming the item (docs/security-validation.md).
func ResolveEndpoint(a *Attempt) (*Endpoint, error) {
	st := a.Type
	raw := st.Endpoint
	if st.EndpointTmpl.HasSubstitutions() {
		var err error
		if raw, err = expandURL(st.EndpointTmpl, st, a.Value, true, "endpoint"); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrEndpoint, err)
		}
	}
	httpURL := st.HTTPURL
	if st.HTTPURLTmpl.HasSubstitutions() {
		var err error
		if httpURL, err = expandURL(st.HTTPURLTmpl, st, a.Value, false, "http_url"); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrEndpoint, err)
		}
	}
	return resolve(raw, int(st.Port), st.TLS || st.Protocol == policy.H3, httpURL)
}

func resolve(raw string, policyPort int, policyTLS bool, httpURL string) (*Endpoint, error) {
	e := &Endpoint{Network: "tcp", TLS: policyTLS, Path: NormalizePath(httpURL)}
	switch {
	case raw == "":
		return nil, fmt.Errorf("%w: empty endpoint", ErrEndpoint)
	case strings.HasPrefix(raw, "+@"):
		e.Network, e.Address, e.ServerName = "unix", "@"+raw[2:], "localhost"
		if len(raw) == 2 {
			return nil, fmt.Errorf("%w: empty abstract socket name", ErrEndpoint)
		}
		return e, nil
	case strings.HasPrefix(raw, "+"):
		e.Network, e.Address, e.ServerName = "unix", raw[1:], "localhost"
		if len(raw) == 1 {
			return nil, fmt.Errorf("%w: empty unix socket path", ErrEndpoint)
		}
		return e, nil
	case strings.Contains(raw, "://"):
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrEndpoint, raw, err)
		}
		var def int
		switch strings.ToLower(u.Scheme) {
		case "http", "ws":
			def, e.TLS = 80, false
		case "https", "wss":
			def, e.TLS = 443, true
		case "mqtt":
			def, e.TLS = 1883, false
		case "mqtts":
			def, e.TLS = 8883, true
		default:
			return nil, fmt.Errorf("%w: %q: unsupported scheme %q", ErrEndpoint, raw, u.Scheme)
		}
		e.Scheme = strings.ToLower(u.Scheme)
		e.Host = u.Hostname()
		if e.Host == "" {
			return nil, fmt.Errorf("%w: %q: no host", ErrEndpoint, raw)
		}
		e.Port = def
		if ps := u.Port(); ps != "" {
			p, err := strconv.Atoi(ps)
			if err != nil || p < 1 || p > 65535 {
				return nil, fmt.Errorf("%w: %q: bad port", ErrEndpoint, raw)
			}
			e.Port = p
		}
		// Anything from the first '/' after the authority, plus any query,
		// replaces http_url.
		rest := raw[strings.Index(raw, "://")+3:]
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			p := rest[i:]
			if strings.HasPrefix(p, "?") {
				p = "/" + p
			}
			e.Path = NormalizePath(p)
		}
	default:
		host, port := raw, policyPort
		if h, p, err := net.SplitHostPort(raw); err == nil {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("%w: %q: bad port", ErrEndpoint, raw)
			}
			host, port = h, n
		} else if strings.HasPrefix(raw, "[") && strings.HasSuffix(raw, "]") {
			host = raw[1 : len(raw)-1]
		} else if strings.Count(raw, ":") > 0 {
			return nil, fmt.Errorf("%w: %q: IPv6 literals must be bracketed", ErrEndpoint, raw)
		}
		if host == "" {
			return nil, fmt.Errorf("%w: %q: no host", ErrEndpoint, raw)
		}
		e.Host, e.Port = host, port
	}
	if e.Port == 0 {
		return nil, fmt.Errorf("%w: %q: no port", ErrEndpoint, raw)
	}
	if err := CheckHost(e.Host); err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrEndpoint, raw, err)
	}
	e.Address = net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
	e.ServerName = e.Host
	return e, nil
}

// NormalizePath applies docs/streams.md §11.2.1: one leading '/' is removed if
// present and one is prepended; the query is kept verbatim.
func NormalizePath(p string) string {
	p = strings.TrimPrefix(p, "/")
	return "/" + p
}

// HostHeader is the endpoint's HTTP Host value (also the ws handshake's and
// a presigned URL's host): the host with the port unless it is the scheme's
// default, IPv6 literals bracketed; "localhost" on unix sockets.
func (ep *Endpoint) HostHeader() string {
	if ep.Network == "unix" {
		return "localhost"
	}
	if (ep.TLS && ep.Port == 443) || (!ep.TLS && ep.Port == 80) {
		if strings.IndexByte(ep.Host, ':') >= 0 {
			return "[" + ep.Host + "]"
		}
		return ep.Host
	}
	return net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
}
