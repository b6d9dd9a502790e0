package hostile

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/quic-go/quic-go/http3"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
)

// httpPolicy is a client streamtype "x" whose http_url substitutes u and p
// (p pre-encoded) into the path and q into the query, with h mapped to the
// header x-meta and direct_proto_str on.
func httpPolicy(t *testing.T, proto string, port int, tlsOn bool) *policy.Policy {
	return parse(t, `{"s": [{"x": {
		"protocol": "`+proto+`", "endpoint": "127.0.0.1", "port": `+strconv.Itoa(port)+`, "tls": `+strconv.FormatBool(tlsOn)+`,
		"http_method": "GET", "http_url": "/api/${u}/${p}?q=${q}",
		"metadata": [{"u": "", "p": "", "q": "", "h": "x-meta:"}],
		"url_preencoded": ["p"], "direct_proto_str": true
	}}]}`)
}

// httpCase is one injection attempt: metadata values and either the item
// the refusal must name (with a reason fragment) or exactly what the server
// must receive: the request target and the extra header lines (h1 wire
// form, in order).
type httpCase struct {
	name    string
	md      []metadata
	refused string // item named by the refusal; "" when the request is sent
	reason  string
	target  string
	headers []string
}

const smuggle = "x HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /smuggled"

var httpCases = []httpCase{
	{name: "plain", md: []metadata{{"u", "abc"}, {"q", "1"}}, target: "/api/abc/?q=1"},
	{name: "request smuggling in path", md: []metadata{{"u", smuggle}},
		target: "/api/x%20HTTP%2F1.1%0D%0AX-Injected%3A%201%0D%0A%0D%0AGET%20%2Fsmuggled/?q="},
	{name: "smuggling in query", md: []metadata{{"q", smuggle}},
		target: "/api//?q=x%20HTTP%2F1.1%0D%0AX-Injected%3A%201%0D%0A%0D%0AGET%20%2Fsmuggled"},
	{name: "query injection", md: []metadata{{"q", "1&admin=true#frag"}}, target: "/api//?q=1%26admin%3Dtrue%23frag"},
	{name: "path traversal", md: []metadata{{"u", "../../etc?x"}}, target: "/api/..%2F..%2Fetc%3Fx/?q="},
	{name: "NUL and controls", md: []metadata{{"u", "\x00\x01\x7f"}}, target: "/api/%00%01%7F/?q="},
	{name: "space tab", md: []metadata{{"u", " \t"}}, target: "/api/%20%09/?q="},
	{name: "non-UTF-8", md: []metadata{{"u", "\xff\xc3("}}, target: "/api/%FF%C3%28/?q="},
	{name: "oversize path value", md: []metadata{{"u", strings.Repeat("a", 16384)}}, target: "/api/" + strings.Repeat("a", 16384) + "/?q="},
	{name: "pre-encoded verbatim", md: []metadata{{"p", "a%20b/c%2Fd?e=f"}}, target: "/api//a%20b/c%2Fd?e=f?q="},
	{name: "pre-encoded space", md: []metadata{{"p", "a b"}}, refused: "p", reason: "space (0x20) at byte 1"},
	{name: "pre-encoded CRLF", md: []metadata{{"p", "a\r\nX-Injected: 1"}}, refused: "p", reason: "CR (0x0d) at byte 1"},
	{name: "pre-encoded hash", md: []metadata{{"p", "a#b"}}, refused: "p", reason: "'#' at byte 1"},
	{name: "pre-encoded bad escape", md: []metadata{{"p", "a%zz"}}, refused: "p", reason: "'%' at byte 1"},
	{name: "pre-encoded non-UTF-8", md: []metadata{{"p", "\xff"}}, refused: "p", reason: "non-ASCII byte 0xff"},
	{name: "header value", md: []metadata{{"h", "a b\tc"}}, target: "/api//?q=", headers: []string{"x-meta: a b\tc"}},
	{name: "header smuggling CRLF", md: []metadata{{"h", "v\r\nX-Injected-Header: 1"}}, refused: "h", reason: "CR (0x0d) at byte 1"},
	{name: "header LF", md: []metadata{{"h", "v\nX-Injected: 1"}}, refused: "h", reason: "LF (0x0a) at byte 1"},
	{name: "header NUL", md: []metadata{{"h", "v\x00"}}, refused: "h", reason: "NUL (0x00) at byte 1"},
	{name: "header ESC", md: []metadata{{"h", "\x1b[2J"}}, refused: "h", reason: "control character 0x1b"},
	{name: "header oversize", md: []metadata{{"h", strings.Repeat("v", 16384)}}, target: "/api//?q=", headers: []string{"x-meta: " + strings.Repeat("v", 16384)}},
	{name: "direct header", md: []metadata{{"x-extra:", "ok"}}, target: "/api//?q=", headers: []string{"x-extra: ok"}},
	{name: "direct header name space", md: []metadata{{"x bad:", "v"}}, refused: "x bad:", reason: "space (0x20)"},
	{name: "direct header name CRLF", md: []metadata{{"x\r\nX-Injected:", "v"}}, refused: "x\r\nX-Injected:", reason: "CR (0x0d)"},
	{name: "direct header value CRLF", md: []metadata{{"x-extra:", "v\r\nX-Injected: 1"}}, refused: "x-extra:", reason: "CR (0x0d)"},
}

// TestH1Injection: over h1 the raw capture server receives exactly the
// request line and headers the table says, byte for byte, one request per
// connection and nothing after it; refused values fail Create naming the
// item and no connection is made.
func TestH1Injection(t *testing.T) {
	for _, c := range httpCases {
		t.Run(c.name, func(t *testing.T) {
			cap := testutil.NewRawCapture(t, nil, "")
			rt := newRuntime(t, ss.Config{Policy: httpPolicy(t, "h1", cap.Port(), false)})
			err, states := transact(t, rt, "x", c.md, nil)
			if c.refused != "" {
				wantRefused(t, err, c.refused, c.reason)
				if got := cap.Conns(); len(got) != 0 {
					t.Fatalf("a refused stream reached the server: %q", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := cap.Wait(1, wait)
			if len(got) != 1 {
				t.Fatalf("%d connections, want 1 (states %v)", len(got), states)
			}
			checkRawHead(t, got[0])
			want := "GET " + c.target + " HTTP/1.1\r\nHost: 127.0.0.1:" + strconv.Itoa(cap.Port()) + "\r\n"
			for _, h := range c.headers {
				want += h + "\r\n"
			}
			want += "Connection: close\r\n\r\n"
			if got[0] != want {
				t.Fatalf("server received\n%q\nwant\n%q", got[0], want)
			}
		})
	}
}

// TestH1SetMetadataRefused: a bad value set after Create is refused by
// SetMetadata (naming the item), the earlier good value stays, and the
// request carries only that.
func TestH1SetMetadataRefused(t *testing.T) {
	cap := testutil.NewRawCapture(t, nil, "")
	rt := newRuntime(t, ss.Config{Policy: httpPolicy(t, "h1", cap.Port(), false)})
	ctx := context.Background()
	s, err := rt.Create(ctx, "x", ss.WithMetadata("h", "good"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		s.Destroy(ctx)
		for range s.Events() {
		}
	}()
	wantRefused(t, s.SetMetadata("h", "bad\r\nX-Injected: 1"), "h", "CR (0x0d)")
	if v, _ := s.Metadata("h"); v != "good" {
		t.Fatalf("h = %q after a refused SetMetadata, want the earlier \"good\"", v)
	}
	if err := s.RequestTx(); err != nil {
		t.Fatal(err)
	}
	got := cap.Wait(1, wait)
	if len(got) != 1 {
		t.Fatalf("%d connections, want 1", len(got))
	}
	checkRawHead(t, got[0])
	if !strings.Contains(got[0], "\r\nx-meta: good\r\n") {
		t.Fatalf("server received %q, want x-meta: good", got[0])
	}
}

// TestH1PolicyTextChecked: the policy author is trusted, but a control
// character or space in the policy's own method or http_url still never
// reaches the wire: the attempt fails before connecting.
func TestH1PolicyTextChecked(t *testing.T) {
	for _, c := range []struct{ method, url string }{
		{"GET /smuggled HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET", "/"},
		{"GET", "/a b"},
		{"GET", "/a\r\nX-Injected: 1"},
	} {
		cap := testutil.NewRawCapture(t, nil, "")
		p := httpPolicy(t, "h1", cap.Port(), false)
		st := p.Streamtype("x")
		st.HTTPMethod, st.HTTPURL, st.HTTPURLTmpl = c.method, c.url, nil
		rt := newRuntime(t, ss.Config{Policy: p})
		err, states := transact(t, rt, "x", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range states {
			if s == ss.Connected {
				t.Fatalf("%q %q: CONNECTED; want the attempt to fail", c.method, c.url)
			}
		}
		if got := cap.Conns(); len(got) != 0 {
			t.Fatalf("%q %q reached the server: %q", c.method, c.url, got)
		}
	}
}

// decodedServer is a real h2 (or h3) server recording decoded requests.
type decodedServer struct {
	log  *testutil.RequestLog
	port int
	ca   *testutil.CA
}

func startDecoded(t *testing.T, proto string, h http.Handler) *decodedServer {
	t.Helper()
	ca := testutil.NewCA(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "localhost", "127.0.0.1").TLSCert}}
	d := &decodedServer{log: testutil.NewRequestLog(), ca: ca}
	if h == nil {
		h = d.log
	}
	if proto == "h3" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http3.Server{Handler: h, TLSConfig: http3.ConfigureTLSConfig(cfg), Logger: slog.New(slog.DiscardHandler)}
		done := make(chan struct{})
		go func() { defer close(done); hs.Serve(pc) }()
		d.port = pc.LocalAddr().(*net.UDPAddr).Port
		t.Cleanup(func() { hs.Close(); pc.Close(); <-done })
		return d
	}
	hts := httptest.NewUnstartedServer(h)
	hts.Config.ErrorLog = log.New(io.Discard, "", 0)
	hts.TLS = cfg
	hts.EnableHTTP2 = true
	hts.StartTLS()
	t.Cleanup(hts.Close)
	d.port = hts.Listener.Addr().(*net.TCPAddr).Port
	return d
}

func (d *decodedServer) policy(t *testing.T, proto string) *policy.Policy {
	p := httpPolicy(t, proto, d.port, true)
	st := p.Streamtype("x")
	st.TrustStoreName, st.TrustStore = "ca", d.ca.TrustStore("ca")
	return p
}

// TestH2H3Injection: the same table over h2 and h3 against real servers
// that record the decoded request: the request target is exactly the
// table's, x-meta and x-extra carry exactly the table's values, and no
// smuggled header arrives.
func TestH2H3Injection(t *testing.T) {
	for _, proto := range []string{"h2", "h3"} {
		t.Run(proto, func(t *testing.T) {
			srv := startDecoded(t, proto, nil)
			rt := newRuntime(t, ss.Config{Policy: srv.policy(t, proto)})
			for _, c := range httpCases {
				t.Run(c.name, func(t *testing.T) {
					before := len(srv.log.Requests())
					err, states := transact(t, rt, "x", c.md, nil)
					if c.refused != "" {
						wantRefused(t, err, c.refused, c.reason)
						if n := len(srv.log.Requests()); n != before {
							t.Fatalf("a refused stream reached the server")
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					got := srv.log.Wait(before+1, wait)
					if len(got) != before+1 {
						t.Fatalf("%d requests, want %d (states %v)", len(got), before+1, states)
					}
					r := got[before]
					if r.RequestURI != c.target {
						t.Fatalf("request target %q, want %q", r.RequestURI, c.target)
					}
					lines := r.HeaderLines()
					checkDecodedHeaders(t, lines)
					var extra []string
					for _, l := range lines {
						if strings.HasPrefix(l, "x-") {
							extra = append(extra, l)
						}
					}
					if strings.Join(extra, "\n") != strings.Join(c.headers, "\n") {
						t.Fatalf("x- headers %q, want %q", extra, c.headers)
					}
				})
			}
		})
	}
}
