package proxy

import (
	"fmt"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/testutil"
)

// createdOK is CREATE_RESULT (success, streamtype list "mintest") and
// CONNSTATE CREATING.
var createdOK = []byte{0x56, 0, 13, 0, 0, 0, 0, 0, ',', 'm', 'i', 'n', 't', 'e', 's', 't', 0x57, 0, 5, 1, 0, 0, 0, 0}

// TestClientMetadataWriters: a proxied stream keeps what the application set
// apart from what the proxy sent (docs/stream-states.md). Metadata returns
// the later of the two; a re-created link re-sends the application's value,
// never one the proxy sent; the proxy cannot make the client keep more than
// maxRxMetadata names. With one map for both, the proxy's value went back
// out on the next link and every name it sent was kept.
func TestClientMetadataWriters(t *testing.T) {
	addr, conns := proxyPeer(t)
	cs, _ := startClient(t, addr, "mintest")
	if err := cs.SetMetadata("ctype", "app"); err != nil {
		t.Fatal(err)
	}
	p := acceptLink(t, conns)
	if _, ok := p.next().(*StreamType); !ok {
		t.Fatal("no STREAMTYPE")
	}
	p.send(createdOK) // CREATE_RESULT ok, CONNSTATE CREATING
	if md, ok := p.next().(*TxMetadata); !ok || md.Name != "ctype" || string(md.Value) != "app" {
		t.Fatalf("want METADATA ctype=app, got %#v", md)
	}
	rxMD := func(name, value string) {
		t.Helper()
		b, err := (&RxMetadata{Name: name, Value: []byte(value)}).AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		p.send(b)
	}
	want := func(name, v string, set bool) {
		t.Helper()
		if !testutil.WaitFor(t.Context(), func() bool { got, ok := cs.Metadata(name); return got == v && ok == set }) {
			got, ok := cs.Metadata(name)
			t.Fatalf("Metadata(%q) = %q %v, want %q %v", name, got, ok, v, set)
		}
	}
	rxMD("ctype", "peer")
	want("ctype", "peer", true) // received after the application's value
	if err := cs.SetMetadata("ctype", "app2"); err != nil {
		t.Fatal(err)
	}
	want("ctype", "app2", true) // the application wrote last
	if md, ok := p.next().(*TxMetadata); !ok || string(md.Value) != "app2" {
		t.Fatalf("want METADATA ctype=app2, got %#v", md)
	}
	rxMD("ctype", "peer2")
	want("ctype", "peer2", true)
	for i := range maxRxMetadata + 20 {
		rxMD(fmt.Sprintf("n%d", i), "v")
	}
	want(fmt.Sprintf("n%d", maxRxMetadata-2), "v", true)
	time.Sleep(100 * time.Millisecond) // the rest arrives
	if v, ok := cs.Metadata(fmt.Sprintf("n%d", maxRxMetadata+19)); ok {
		t.Fatalf("name %d kept (%q): the proxy grows the client's metadata", maxRxMetadata+19, v)
	}

	// A new link: the application's value goes out again, not the peer's.
	p.c.Close()
	p = acceptLink(t, conns)
	if _, ok := p.next().(*StreamType); !ok {
		t.Fatal("no STREAMTYPE after link loss")
	}
	p.send(createdOK)
	if md, ok := p.next().(*TxMetadata); !ok || md.Name != "ctype" || string(md.Value) != "app2" {
		t.Fatalf("re-sent METADATA %#v, want ctype=app2 (what the application set)", md)
	}
	p.nothing(100 * time.Millisecond) // nothing the proxy sent goes back
	want("ctype", "peer2", true)      // a new link does not forget what was received
}
