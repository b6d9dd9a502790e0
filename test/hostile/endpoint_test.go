package hostile

import (
	"context"
	"strconv"
	"testing"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
)

// TestEndpointInjection: values substituted into a URL endpoint are
// percent-encoded in its path and refused in its authority when they could
// change where the request goes; a value substituted as the whole host is
// refused with control characters or spaces.
func TestEndpointInjection(t *testing.T) {
	cap := testutil.NewRawCapture(t, nil, "")
	port := strconv.Itoa(cap.Port())
	p := parse(t, `{"s": [
		{"u": {"protocol": "h1", "http_method": "GET", "endpoint": "http://${host}:`+port+`/e/${seg}",
			"metadata": [{"host": ""}, {"seg": ""}]}},
		{"h": {"protocol": "h1", "http_method": "GET", "endpoint": "${host}", "port": `+port+`,
			"metadata": [{"host": ""}]}}
	]}`)
	rt := newRuntime(t, ss.Config{Policy: p})
	err, _ := transact(t, rt, "u", []metadata{{"host", "127.0.0.1"}, {"seg", "a b/../x?y#z"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := cap.Wait(1, wait)
	if len(got) != 1 {
		t.Fatalf("%d connections, want 1", len(got))
	}
	checkRawHead(t, got[0])
	if want := "GET /e/a%20b%2F..%2Fx%3Fy%23z HTTP/1.1\r\n"; got[0][:len(want)] != want {
		t.Fatalf("request %q, want it to start %q", got[0], want)
	}
	for _, c := range []struct{ st, value, reason string }{
		{"u", "evil.test/", "'/' at byte 9"},
		{"u", "user@evil.test", "'@' at byte 4"},
		{"u", "127.0.0.1\r\nX-Injected: 1", "CR (0x0d) at byte 9"},
		{"h", "127.0.0.1 x", "space (0x20) at byte 9"},
		{"h", "127.0.0.1\x00", "NUL (0x00) at byte 9"},
	} {
		_, err := rt.Create(context.Background(), c.st, ss.WithMetadata("host", c.value))
		wantRefused(t, err, "host", c.reason)
	}
	if n := len(cap.Conns()); n != 1 {
		t.Fatalf("%d connections after refusals, want 1", n)
	}
}
