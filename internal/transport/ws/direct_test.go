package ws

import (
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/securestreams/ss/internal/testutil"
)

// TestTryDataNoAlloc: a direct data frame (the path every small Send takes
// while nothing is queued) is framed, masked and written without
// allocating once the frame buffer exists; a closure handed to
// RawConn.Write cost three allocations per frame. The peer receives every
// frame whole.
func TestTryDataNoAlloc(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	w := newFrameWriter(conn, true)
	data := make([]byte, 64)
	frames := 0
	send := func() {
		ok, busy, err := w.tryData(rc, opBinary, true, data)
		if err != nil || !ok || busy {
			t.Fatalf("tryData: ok %v busy %v err %v", ok, busy, err)
		}
		frames++
	}
	send() // the frame buffer is allocated once
	allocs := testing.AllocsPerRun(200, send)
	if allocs != 0 && !testutil.RaceEnabled {
		t.Errorf("%v allocations per direct frame, want 0", allocs)
	}
	conn.Close()
	// A masked 64 B frame: 2 header bytes and a 4-byte masking key.
	if n, want := <-got, int64(frames*(2+4+64)); n != want {
		t.Errorf("peer received %d bytes, want %d (%d frames)", n, want, frames)
	}
}
