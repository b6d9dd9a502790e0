package test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/internal/testutil"
)

// pxDial opens a hand-written SSSv1 link to an in-process proxy at addr and
// sends STREAMTYPE name; it returns the link, its decoder and the raw
// CREATE_RESULT frame.
func pxDial(t *testing.T, addr, name string) (net.Conn, *proxy.Decoder, []byte) {
	t.Helper()
	c, err := net.Dial("unix", strings.TrimPrefix(addr, "unix:"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	b, _ := (&proxy.StreamType{PID: 7, Credit: proxy.DefaultCredit, Name: name}).AppendBinary(nil)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	hdr := make([]byte, 3)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[1])<<8|int(hdr[2]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	return c, proxy.NewDecoder(c, proxy.ProxyToClient, proxy.Limits{}), append(hdr, body...)
}

// TestProxyCreateResultClientBuflen: CREATE_RESULT carries the
// streamtype's client_buflen as written, 0 when unset (docs/wire.md §4.1).
func TestProxyCreateResultClientBuflen(t *testing.T) {
	a := rawType("cb", "127.0.0.1", 1)
	a.ClientBuflen = 65536
	b := rawType("nocb", "127.0.0.1", 1)
	addr, _ := inProcessProxy(t, newPolicy(a, b))
	for _, tc := range []struct{ name, want string }{
		{"cb", "560008" + "00" + "00010000" + hex.EncodeToString([]byte(",cb"))},
		{"nocb", "56000a" + "00" + "00000000" + hex.EncodeToString([]byte(",nocb"))},
	} {
		_, _, cr := pxDial(t, addr, tc.name)
		if got := hex.EncodeToString(cr); got != tc.want {
			t.Errorf("%s: CREATE_RESULT %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestProxyBuflenPerStreamtype: each link's TX limit is its own
// streamtype's proxy_buflen (docs/wire.md §7.2): a TX_PAYLOAD over it closes
// that link only, the same payload passes on a streamtype with a larger
// proxy_buflen.
func TestProxyBuflenPerStreamtype(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	small := rawType("small", "127.0.0.1", srv.Port())
	small.ProxyBuflen = 1024
	big := rawType("big", "127.0.0.1", srv.Port()) // 0: 32768
	addr, _ := inProcessProxy(t, newPolicy(small, big))
	payload := bytes.Repeat([]byte("p"), 2000)
	tx, _ := (&proxy.TxPayload{Flags: event.SOM | event.EOM, Payload: payload}).AppendBinary(nil)

	c, dec, _ := pxDial(t, addr, "big")
	if _, err := c.Write(tx); err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < len(payload) {
		c.SetReadDeadline(time.Now().Add(wait))
		m, err := dec.Next()
		if err != nil {
			t.Fatalf("big: after %d bytes: %v", got, err)
		}
		if rx, ok := m.(*proxy.RxPayload); ok {
			got += len(rx.Payload)
		}
	}

	c, dec, _ = pxDial(t, addr, "small")
	if _, err := c.Write(tx); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	for {
		m, err := dec.Next()
		if err == nil {
			if _, ok := m.(*proxy.RxPayload); ok {
				t.Fatal("small: payload over proxy_buflen was forwarded")
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("small: link still open after a TX_PAYLOAD over proxy_buflen")
			}
		}
		break
	}
}

// TestProxyRxflowSlowClient: a fast onward producer (raw) and a slow
// client link: every byte arrives in order, and the proxy's queue for the
// client never exceeds the streamtype's proxy_buflen_rxflow_on_above plus
// one onward chunk (a raw read, at most 64 KiB, in at most two frames).
func TestProxyRxflowSlowClient(t *testing.T) {
	const total = 4 << 20
	srv := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		buf := make([]byte, 32<<10)
		for off := 0; off < total; off += len(buf) {
			flowPattern(off, buf)
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
		io.Copy(io.Discard, c)
	})
	st := rawType("fh", "127.0.0.1", srv.Port())
	st.NailedUp = true
	st.ProxyBuflen, st.ProxyBuflenRxflowOnAbove, st.ProxyBuflenRxflowOffBelow = 8192, 16384, 4096
	addr, ps := parkedProxy(t, newPolicy(st))

	c, dec, _ := pxDial(t, addr, "fh")
	next := func() (proxy.Message, error) {
		c.SetReadDeadline(time.Now().Add(wait))
		return dec.Next()
	}
	readPatternRx(t, total, next, func(got, n int) {
		if got%(256<<10) < n {
			time.Sleep(5 * time.Millisecond) // slow client
		}
	})
	bound := 16384 + 64<<10 + 2*(proxy.HeaderLen+proxy.PayloadHeaderLen)
	hw := ps.QueueHighWater()
	t.Logf("queue high water %d bytes (bound %d)", hw, bound)
	if hw > bound {
		t.Fatalf("queue high water %d > on_above + one chunk (%d)", hw, bound)
	}
}
