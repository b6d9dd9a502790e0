package httpserver

import (
	"crypto/tls"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/securestreams/ss/policy"
)

// TestH2MaxConcurrentStreams: the server's first SETTINGS bounds the
// streams (each an accepted stream) a client may open on one connection.
func TestH2MaxConcurrentStreams(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(withTLS(t, serverType("srv", policy.H2)))
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q", p)
	}
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v, want SETTINGS", f)
	}
	v, ok := sf.Value(http2.SettingMaxConcurrentStreams)
	if !ok || v != MaxH2Streams {
		t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS = %d (sent %v), want %d", v, ok, MaxH2Streams)
	}
}
