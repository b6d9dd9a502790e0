package test

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
)

// patternLen is prime so that chunk boundaries never line up with it.
const patternLen = 65521

var pattern = func() []byte {
	p := make([]byte, patternLen*3)
	x := uint32(1)
	for i := range patternLen {
		x = x*1103515245 + 12345
		p[i] = byte(x >> 16)
	}
	copy(p[patternLen:], p[:patternLen])
	copy(p[2*patternLen:], p[:patternLen])
	return p
}()

// TestRawBackpressure streams 100 MiB from a fast server to a slow reader:
// every byte must arrive in order while the heap stays bounded (the stream
// stops reading from the socket instead of buffering).
func TestRawBackpressure(t *testing.T) {
	const total = 100 << 20
	srv := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		off := 0
		for off < total {
			n := min(32<<10, total-off)
			p := pattern[off%patternLen:]
			if _, err := c.Write(p[:n]); err != nil {
				return
			}
			off += n
		}
		c.(*net.TCPConn).CloseWrite()
		c.Read(make([]byte, 1)) // until the client closes
	})
	st := rawType("bulk", "127.0.0.1", srv.Port())
	st.Opportunistic = true // started with Connect: a nailed_up stream would reconnect
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
	ctx := context.Background()

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc

	s, err := rt.Create(ctx, "bulk")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(); err != nil {
		t.Fatal(err)
	}
	got, events, peak := 0, 0, uint64(0)
	slow := time.Now().Add(300 * time.Millisecond)
	var states []string
	defer watchdog(t, s, 30*time.Second).Stop() // a slow consumer by design
	for ev := range s.Events() {
		if ev.Kind == ss.StateEvent {
			states = append(states, ev.State.String())
			if ev.State == ss.Disconnected {
				s.Destroy(ctx)
			}
			continue
		}
		if ev.Flags != 0 {
			t.Fatalf("raw rx flags %v", ev.Flags)
		}
		p := pattern[got%patternLen:]
		if !bytes.Equal(ev.Payload, p[:len(ev.Payload)]) {
			t.Fatalf("payload mismatch at offset %d", got)
		}
		got += len(ev.Payload)
		events++
		if time.Now().Before(slow) {
			time.Sleep(5 * time.Millisecond) // a slow reader while the server floods
		}
		if events%256 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	if got != total {
		t.Fatalf("received %d bytes, want %d", got, total)
	}
	if want := "CREATING CONNECTING CONNECTED DISCONNECTED DESTROYING"; joinStates(states) != want {
		t.Fatalf("states %s, want %s", joinStates(states), want)
	}
	if grow := int64(peak) - int64(base); grow > 32<<20 {
		t.Fatalf("heap grew by %d MiB while streaming %d MiB: not bounded", grow>>20, total>>20)
	}
	t.Logf("%d MiB in %d events; peak heap growth %d KiB", total>>20, events, (int64(peak)-int64(base))>>10)
}

func joinStates(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}
