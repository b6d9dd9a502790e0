package transport

import (
	"errors"
	"testing"
)

func TestResolveForms(t *testing.T) {
	cases := []struct {
		name                 string
		raw                  string
		port                 int
		tls                  bool
		url                  string
		network, address     string
		host                 string
		wantPort             int
		wantTLS              bool
		path, server, scheme string
	}{
		{name: "host", raw: "example.test", port: 8443, tls: true, url: "v1/x", network: "tcp", address: "example.test:8443", host: "example.test", wantPort: 8443, wantTLS: true, path: "/v1/x", server: "example.test"},
		{name: "host:port overrides policy port", raw: "127.0.0.1:9000", port: 1, url: "/a?b=c", network: "tcp", address: "127.0.0.1:9000", host: "127.0.0.1", wantPort: 9000, path: "/a?b=c", server: "127.0.0.1"},
		{name: "bracketed ipv6", raw: "[::1]", port: 80, network: "tcp", address: "[::1]:80", host: "::1", wantPort: 80, path: "/", server: "::1"},
		{name: "bracketed ipv6 with port", raw: "[::1]:81", port: 80, network: "tcp", address: "[::1]:81", host: "::1", wantPort: 81, path: "/", server: "::1"},
		{name: "https url turns tls on, default port, path replaces http_url", raw: "https://example.test/p/q?x=1", port: 1, url: "ignored", network: "tcp", address: "example.test:443", host: "example.test", wantPort: 443, wantTLS: true, path: "/p/q?x=1", server: "example.test", scheme: "https"},
		{name: "http url turns tls off, no path keeps http_url", raw: "http://127.0.0.1:8080", tls: true, url: "kept", network: "tcp", address: "127.0.0.1:8080", host: "127.0.0.1", wantPort: 8080, path: "/kept", server: "127.0.0.1", scheme: "http"},
		{name: "lone slash replaces http_url", raw: "ws://127.0.0.1/", url: "kept", network: "tcp", address: "127.0.0.1:80", host: "127.0.0.1", wantPort: 80, path: "/", server: "127.0.0.1", scheme: "ws"},
		{name: "wss default", raw: "wss://h", network: "tcp", address: "h:443", host: "h", wantPort: 443, wantTLS: true, path: "/", server: "h", scheme: "wss"},
		{name: "mqtt default", raw: "mqtt://h", tls: true, network: "tcp", address: "h:1883", host: "h", wantPort: 1883, path: "/", server: "h", scheme: "mqtt"},
		{name: "mqtts default", raw: "mqtts://h", network: "tcp", address: "h:8883", host: "h", wantPort: 8883, wantTLS: true, path: "/", server: "h", scheme: "mqtts"},
		{name: "unix path", raw: "+/tmp/x.sock", port: 5, tls: true, network: "unix", address: "/tmp/x.sock", wantTLS: true, path: "/", server: "localhost"},
		{name: "abstract", raw: "+@example.raw", network: "unix", address: "@example.raw", path: "/", server: "localhost"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := resolve(c.raw, c.port, c.tls, c.url)
			if err != nil {
				t.Fatalf("resolve(%q): %v", c.raw, err)
			}
			if e.Network != c.network || e.Address != c.address || e.Host != c.host || e.Port != c.wantPort ||
				e.TLS != c.wantTLS || e.Path != c.path || e.ServerName != c.server || e.Scheme != c.scheme {
				t.Fatalf("resolve(%q) = %+v", c.raw, *e)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	for _, raw := range []string{"", "+", "+@", "file:///etc/passwd", "gopher://h", "https://:443", "h:0", "h:70000", "::1", "host"} {
		port := 0
		_, err := resolve(raw, port, false, "")
		if !errors.Is(err, ErrEndpoint) {
			t.Errorf("resolve(%q) error = %v, want ErrEndpoint", raw, err)
		}
	}
}

func TestNormalizePath(t *testing.T) {
	for in, want := range map[string]string{"": "/", "/": "/", "v1/x": "/v1/x", "/v1/x": "/v1/x", "//a": "//a", "a?b=/c": "/a?b=/c"} {
		if got := NormalizePath(in); got != want {
			t.Errorf("NormalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPerfReport(t *testing.T) {
	got := string(PerfReport(&Timing{Peer: "127.0.0.1", DNSDisp: 1, DNSAddrs: []string{"127.0.0.1"}}, 0, 200))
	want := `{"peer":"127.0.0.1","dns_us":0,"dns_disp":1,"sockconn_us":0,"tls_us":0,"txn_resp_us":0,"dns":["127.0.0.1"],"prot_specific":{"protocol":"http","resp":200}}`
	if got != want {
		t.Fatalf("PerfReport = %s\nwant %s", got, want)
	}
	if got := string(PerfReport(nil, 0, -1)); got != `{"peer":"","dns_us":0,"dns_disp":0,"sockconn_us":0,"tls_us":0,"txn_resp_us":0,"dns":[]}` {
		t.Fatalf("PerfReport(nil) = %s", got)
	}
}
