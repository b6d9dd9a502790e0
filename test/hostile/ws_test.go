package hostile

import (
	"strconv"
	"strings"
	"testing"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
)

func wsPolicy(t *testing.T, port int) *policy.Policy {
	return parse(t, `{"s": [{"x": {
		"protocol": "ws", "endpoint": "127.0.0.1", "port": `+strconv.Itoa(port)+`,
		"http_url": "/api/${u}/${p}?q=${q}",
		"metadata": [{"u": "", "p": "", "q": "", "h": "x-meta:"}],
		"url_preencoded": ["p"], "direct_proto_str": true
	}}]}`)
}

// TestWSInjection: the ws handshake follows the HTTP table: the raw capture
// server receives exactly one request head whose request line carries the
// table's target and whose x- headers are exactly the table's; refused
// values fail Create naming the item and never connect.
func TestWSInjection(t *testing.T) {
	for _, c := range httpCases {
		t.Run(c.name, func(t *testing.T) {
			cap := testutil.NewRawCapture(t, nil, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			rt := newRuntime(t, ss.Config{Policy: wsPolicy(t, cap.Port())})
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
			if len(got) < 1 {
				t.Fatalf("no connection (states %v)", states)
			}
			raw := got[0]
			checkRawHead(t, raw)
			if want := "GET " + c.target + " HTTP/1.1\r\n"; !strings.HasPrefix(raw, want) {
				t.Fatalf("handshake starts %q, want %q", raw[:min(len(raw), len(want)+20)], want)
			}
			var extra []string
			for _, l := range strings.Split(raw, "\r\n") {
				if strings.HasPrefix(strings.ToLower(l), "x-") {
					extra = append(extra, strings.ToLower(l[:strings.IndexByte(l, ':')])+l[strings.IndexByte(l, ':'):])
				}
			}
			if strings.Join(extra, "\n") != strings.Join(c.headers, "\n") {
				t.Fatalf("x- headers %q, want %q", extra, c.headers)
			}
		})
	}
}
