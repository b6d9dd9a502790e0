package proxyhostile

import (
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/internal/testutil/ssproxytest"
)

func frame(m proxy.Message) []byte {
	b, err := m.AppendBinary(nil)
	if err != nil {
		panic(err)
	}
	return b
}

// TestMalformedInput: garbage, truncated, oversize and out-of-place frames
// each close only their own link (before or after STREAMTYPE), the proxy
// logs them at WARN, stays up and small, and a well-behaved client's round
// trips go on.
func TestMalformedInput(t *testing.T) {
	d := startProxy(t, "-frame-timeout", "1s", "-setup-timeout", "1s")
	good := echoLink(t, d.Address)
	rss := watchRSS(d.Cmd.Process.Pid)
	pr := startProbe(good)
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	st := frame(&proxy.StreamType{Name: "echo", Credit: proxy.DefaultCredit})
	badVersion := append([]byte(nil), st...)
	badVersion[3] = 2
	tx := frame(&proxy.TxPayload{Flags: event.SOM | event.EOM, Payload: []byte("hello")})
	for _, tc := range []struct {
		name    string
		created bool   // send a valid STREAMTYPE first
		b       []byte // then these bytes
		closeWr bool   // then half-close
	}{
		{"garbage first", false, garbage, false},
		{"garbage after STREAMTYPE", true, garbage, false},
		{"unknown code", true, []byte{0x01, 0x00, 0x00}, false},
		{"proxy-to-client code", true, frame(&proxy.CreateResult{Result: proxy.ResultOK}), false},
		{"reserved code", true, []byte{0xB2, 0x00, 0x00}, false},
		{"STREAMTYPE version 2", false, badVersion, false},
		{"STREAMTYPE body too short", false, []byte{0xAA, 0x00, 0x02, 0x01, 0x00}, false},
		{"first frame not STREAMTYPE", false, tx, false},
		{"second STREAMTYPE", true, st, false},
		{"ONWARD_CONNECT with a body", true, []byte{0xAB, 0x00, 0x01, 0x00}, false},
		{"TIMEOUT_UPDATE of 2 bytes", true, []byte{0xB0, 0x00, 0x02, 0x00, 0x01}, false},
		{"oversize TX_PAYLOAD (65535 > proxy_buflen)", true, append([]byte{0xAD, 0xFF, 0xFF}, make([]byte, 100)...), false},
		{"METADATA name length past the frame", true, []byte{0xAE, 0x00, 0x03, 0x40, 'a', 'b'}, false},
		{"truncated TX_PAYLOAD, then end of file", true, tx[:len(tx)-2], true},
		{"truncated header, then end of file", true, []byte{0xAD, 0x00}, true},
		{"first 3 bytes of a 1000-byte frame, then nothing", true, []byte{0xAD, 0x03, 0xE8}, false},
		{"STREAMTYPE cut in half, then nothing", false, st[:5], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ssproxytest.MustDial(t, d.Address)
			if tc.created {
				l.MustCreate(t, "echo")
			}
			l.Conn.Write(tc.b) // the proxy may close before reading it all
			if tc.closeWr {
				l.Conn.(*net.UnixConn).CloseWrite()
			}
			if err := l.WaitClosed(10 * time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Link after link of garbage does not flood the log: WARN lines about
	// closed links are limited to 20 a second.
	before := d.CountLog("closing link")
	start := time.Now()
	for range 300 {
		l := ssproxytest.MustDial(t, d.Address)
		l.Conn.Write(garbage[:64])
		if err := l.WaitClosed(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	// Let the last lines arrive, then count.
	time.Sleep(200 * time.Millisecond)
	lines := d.CountLog("closing link") - before
	if max := 20 * (int(time.Since(start).Seconds()) + 2); lines > max {
		t.Errorf("%d log lines for 300 garbage links in %v, want at most %d", lines, time.Since(start), max)
	}
	t.Logf("300 garbage links in %v: %d log lines", time.Since(start), lines)
	pr.finish(t, 5)
	rss.finish(t)
	d.WaitLog(t, time.Second, "level=WARN", "malformed frame")
	d.WaitLog(t, time.Second, "level=WARN", "frame not complete within 1s")
	d.WaitLog(t, time.Second, "level=WARN", "no valid STREAMTYPE")
	stopInTime(t, d)
}
