package ws

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss/internal/event"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-acc
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// testReader is a frame reader on conn; server says it reads a client's
// (masked) frames. pongs counts the PONGs it saw.
func testReader(conn net.Conn, server bool, limit int64, pongs *atomic.Int32) *frameReader {
	return &frameReader{
		conn: conn, w: newFrameWriter(conn, !server), server: server, limit: limit,
		pong: func() { pongs.Add(1) }, buf: make([]byte, readBufSize), first: true,
	}
}

// wireFrame builds one frame as a peer sends it: masked when mask (with a
// fixed key), the length in the shortest form unless lenForm forces 126 or
// 127.
func wireFrame(b0 byte, payload []byte, mask bool, lenForm int) []byte {
	var f []byte
	f = append(f, b0)
	var mb byte
	if mask {
		mb = 0x80
	}
	l := len(payload)
	switch {
	case lenForm == 127 || lenForm == 0 && l > 0xffff:
		f = append(f, mb|127)
		f = binary.BigEndian.AppendUint64(f, uint64(l))
	case lenForm == 126 || lenForm == 0 && l > 125:
		f = append(f, mb|126)
		f = binary.BigEndian.AppendUint16(f, uint16(l))
	default:
		f = append(f, mb|byte(l))
	}
	if !mask {
		return append(f, payload...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	f = append(f, key[:]...)
	for i, c := range payload {
		f = append(f, c^key[i&3])
	}
	return f
}

// TestReaderHostile: every framing violation ends the read with an error
// wrapping ErrProtocol (a close 1002 sent to the peer), a message over the
// limit with websocket.ErrReadLimit (close 1009), and a close frame that
// breaks the rules is refused; nothing of the bad frame is delivered, and
// the error stays.
func TestReaderHostile(t *testing.T) {
	long := make([]byte, 126)
	for _, c := range []struct {
		name   string
		server bool // the reader is the server: frames must be masked
		wire   []byte
		want   error // ErrProtocol or websocket.ErrReadLimit
		code   int   // close code sent to the peer
	}{
		{"over the limit", false, wireFrame(0x82, make([]byte, 65), false, 0), websocket.ErrReadLimit, 1009},
		{"fragments over the limit", false, append(wireFrame(0x02, make([]byte, 40), false, 0), wireFrame(0x80, make([]byte, 40), false, 0)...), websocket.ErrReadLimit, 1009},
		{"length 2^63", false, []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, ErrProtocol, 1002},
		{"64-bit form of a short length", false, wireFrame(0x82, []byte("abc"), false, 127), ErrProtocol, 1002},
		{"16-bit form of a short length", false, wireFrame(0x82, []byte("abc"), false, 126), ErrProtocol, 1002},
		{"reserved opcode 3", false, wireFrame(0x83, nil, false, 0), ErrProtocol, 1002},
		{"reserved opcode 0xb", false, wireFrame(0x8b, nil, false, 0), ErrProtocol, 1002},
		{"RSV1", false, wireFrame(0xc2, []byte("x"), false, 0), ErrProtocol, 1002},
		{"RSV2", false, wireFrame(0xa2, []byte("x"), false, 0), ErrProtocol, 1002},
		{"RSV3", false, wireFrame(0x92, []byte("x"), false, 0), ErrProtocol, 1002},
		{"masked frame from a server", false, wireFrame(0x82, []byte("x"), true, 0), ErrProtocol, 1002},
		{"unmasked frame from a client", true, wireFrame(0x82, []byte("x"), false, 0), ErrProtocol, 1002},
		{"fragmented ping", false, wireFrame(0x09, nil, false, 0), ErrProtocol, 1002},
		{"ping over 125 bytes", false, wireFrame(0x89, long, false, 0), ErrProtocol, 1002},
		{"continuation without a message", false, wireFrame(0x80, []byte("x"), false, 0), ErrProtocol, 1002},
		{"new message inside a fragmented one", false, append(wireFrame(0x01, []byte("a"), false, 0), wireFrame(0x81, []byte("b"), false, 0)...), ErrProtocol, 1002},
		{"close with 1 byte", false, wireFrame(0x88, []byte{3}, false, 0), ErrProtocol, 1002},
		{"close code 1005", false, wireFrame(0x88, []byte{0x03, 0xed}, false, 0), ErrProtocol, 1002},
		{"close code 999", false, wireFrame(0x88, []byte{0x03, 0xe7}, false, 0), ErrProtocol, 1002},
		{"close code 5000", false, wireFrame(0x88, []byte{0x13, 0x88}, false, 0), ErrProtocol, 1002},
		{"close reason not UTF-8", false, wireFrame(0x88, []byte{0x03, 0xe8, 0xff}, false, 0), ErrProtocol, 1002},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc, peer := tcpPair(t)
			var pongs atomic.Int32
			fr := testReader(rc, c.server, 64, &pongs)
			if _, err := peer.Write(c.wire); err != nil {
				t.Fatal(err)
			}
			var delivered int
			var err error
			for err == nil {
				var data []byte
				data, _, err = fr.next()
				delivered += len(data)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if delivered > 0 {
				t.Errorf("%d bytes delivered before the error", delivered)
			}
			if _, _, again := fr.next(); !errors.Is(again, c.want) {
				t.Errorf("second next: %v, want the same error", again)
			}
			peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			f, rerr := readFrame(peer)
			if rerr != nil {
				t.Fatalf("no close frame: %v", rerr)
			}
			if f.op != opClose || len(f.payload) < 2 || int(binary.BigEndian.Uint16(f.payload)) != c.code {
				t.Fatalf("peer got op %x payload %q, want close %d", f.op, f.payload, c.code)
			}
			if f.masked == c.server {
				t.Errorf("close frame masked=%v from the %s", f.masked, map[bool]string{false: "client", true: "server"}[c.server])
			}
		})
	}
}

// readerSteps is a conversation that uses every part of the reader: a
// fragmented message with a PING and a PONG between its fragments, a
// message in the 16-bit length form, an empty message, then a close.
func readerSteps(mask bool) (wire []byte, want []string) {
	pay := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz"), 4)[:130]
	for _, f := range [][]byte{
		wireFrame(0x01, []byte("hel"), mask, 0),
		wireFrame(0x89, []byte("pi"), mask, 0),
		wireFrame(0x00, nil, mask, 0),
		wireFrame(0x8a, nil, mask, 0),
		wireFrame(0x80, []byte("lo"), mask, 0),
		wireFrame(0x82, pay, mask, 0),
		wireFrame(0x82, nil, mask, 0),
		wireFrame(0x88, append([]byte{0x0f, 0xa0}, "bye"...), mask, 0),
	} {
		wire = append(wire, f...)
	}
	return wire, []string{"SOM|EOM hello", "SOM|EOM " + string(pay), "SOM|EOM "}
}

// TestReaderResumesAtEveryByte: the conversation is written one byte at a
// time, and after each byte the read is stopped by its deadline. The
// reader resumes wherever the deadline fell (inside a header, a length, a
// mask key, a payload, a control frame) and gives the messages, the PONG
// and the close as a reader of the whole conversation would; the PING
// is answered. Both roles (the server reads masked frames).
func TestReaderResumesAtEveryByte(t *testing.T) {
	for _, server := range []bool{false, true} {
		t.Run(map[bool]string{false: "client", true: "server"}[server], func(t *testing.T) {
			t.Parallel()
			wire, want := readerSteps(server)
			rc, peer := tcpPair(t)
			var pongs atomic.Int32
			fr := testReader(rc, server, 1<<20, &pongs)
			replies := make(chan []frame, 1)
			go func() {
				var got []frame
				for {
					f, err := readFrame(peer)
					if err != nil {
						replies <- got
						return
					}
					got = append(got, f)
				}
			}()
			var got []string
			var end error
			timeouts := 0
			for i := range wire {
				if _, err := peer.Write(wire[i : i+1]); err != nil {
					t.Fatal(err)
				}
				for {
					rc.SetReadDeadline(time.Now().Add(500 * time.Microsecond))
					data, flags, err := fr.next()
					if errors.Is(err, os.ErrDeadlineExceeded) {
						timeouts++
						break
					}
					if err != nil {
						end = err
						break
					}
					got = append(got, flags.String()+" "+string(data))
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("messages\n got %q\nwant %q", got, want)
			}
			var ce *websocket.CloseError
			if !errors.As(end, &ce) || ce.Code != 4000 || ce.Text != "bye" {
				t.Fatalf("end = %v, want close 4000 bye", end)
			}
			if n := pongs.Load(); n != 1 {
				t.Errorf("%d PONGs seen, want 1", n)
			}
			// Most bytes leave the reader waiting for the next one.
			if timeouts < len(wire)/2 {
				t.Errorf("%d interrupted reads for %d bytes", timeouts, len(wire))
			}
			rc.Close()
			peerFrames := <-replies
			if len(peerFrames) != 2 || peerFrames[0].op != opPong || string(peerFrames[0].payload) != "pi" ||
				peerFrames[1].op != opClose || binary.BigEndian.Uint16(peerFrames[1].payload) != 4000 {
				t.Fatalf("peer got %+v, want the PONG pi and the close 4000", peerFrames)
			}
		})
	}
}

// TestReaderChunks: a message longer than RxChunkSize comes as several
// chunks, SOM on the first and EOM on the last, the last carrying EOM even
// when the message's final frame is empty; the lengths of a masked
// message read straight into the chunk are unmasked right.
func TestReaderChunks(t *testing.T) {
	big := make([]byte, RxChunkSize+100)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for _, server := range []bool{false, true} {
		rc, peer := tcpPair(t)
		var pongs atomic.Int32
		fr := testReader(rc, server, 1<<20, &pongs)
		exact := make([]byte, RxChunkSize)
		go func() {
			peer.Write(wireFrame(0x82, big, server, 0))
			peer.Write(wireFrame(0x02, exact, server, 0))
			peer.Write(wireFrame(0x80, nil, server, 0))
		}()
		var gotBig []byte
		var flags []event.Flags
		for len(gotBig) < len(big) {
			data, f, err := fr.next()
			if err != nil {
				t.Fatal(err)
			}
			gotBig = append(gotBig, data...)
			flags = append(flags, f)
		}
		if !bytes.Equal(gotBig, big) {
			t.Fatalf("server=%v: the big message differs", server)
		}
		if len(flags) != 2 || flags[0] != event.SOM || flags[1] != event.EOM {
			t.Fatalf("server=%v: flags %v, want [SOM EOM]", server, flags)
		}
		data, f, err := fr.next()
		if err != nil || len(data) != RxChunkSize || f != event.SOM|event.EOM {
			t.Fatalf("server=%v: exact-size message: %d bytes, %v, %v; want %d SOM|EOM", server, len(data), f, err, RxChunkSize)
		}
	}
}

// TestReaderConnectionEnds: the connection ending without a close frame
// is io.ErrUnexpectedEOF, whether inside a frame or between frames.
func TestReaderConnectionEnds(t *testing.T) {
	for _, wire := range []string{"", "\x82", "\x82\x05ab"} {
		rc, peer := tcpPair(t)
		var pongs atomic.Int32
		fr := testReader(rc, false, 1<<20, &pongs)
		peer.Write([]byte(wire))
		peer.Close()
		if _, _, err := fr.next(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: err = %v, want io.ErrUnexpectedEOF", wire, err)
		}
	}
}

// TestHandshakeBufferTaken: a server that writes its first frame in the
// same write as the 101 response; the frame is delivered (gorilla's
// handshake read it into its buffer, which the frame reader takes over).
func TestHandshakeBufferTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fuzzPeer(c, wireFrame(0x81, []byte("right behind the 101"), false, 0))
	}()
	sink := newSink()
	res := runAsync(t, attempt(wsType(ln.Addr().String()), newTx()), sink)(false)
	if !errors.Is(res.Err, ErrConnLost) {
		t.Fatalf("Err = %v, want ErrConnLost (the peer closed without a close frame)", res.Err)
	}
	eq(t, sink.Events(true), []string{"CONNECTED", "rx SOM|EOM right behind the 101"})

	// gorilla's reader is where handshakeBuffer looks.
	cli, srv := net.Pipe()
	go fuzzPeer(srv, []byte("\x81\x02hi"))
	d := websocket.Dialer{NetDialContext: func(context.Context, string, string) (net.Conn, error) { return cli, nil }}
	c, _, err := d.Dial("ws://127.0.0.1:1/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf, r, n, ok := handshakeBuffer(c)
	if !ok || len(buf) < 256 || !strings.Contains(string(buf[r:n]), "hi") {
		t.Fatalf("handshakeBuffer = %d bytes, [%d:%d] %q, %v; want gorilla's buffer holding the frame", len(buf), r, n, buf[r:n], ok)
	}
}

// unixPair returns both ends of a Unix stream socket pair (no port: the
// fuzz target makes thousands).
func unixPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		conns[i], err = net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { conns[0].Close(); conns[1].Close() })
	return conns[0], conns[1]
}

// readConversation runs a client frame reader over wire, written by a
// peer (a Unix socket pair) in pieces whose sizes (1 to 4 bytes) come from cuts, or
// in one write when cuts is 0; with cuts every read has a deadline of
// 200 µs, so reads are interrupted wherever the pieces fall. It returns
// the chunks and how the read ended.
func readConversation(t *testing.T, wire []byte, cuts uint64) (chunks []string, end string) {
	rc, peer := unixPair(t)
	go io.Copy(io.Discard, peer) // PONGs and the close reply
	go func() {
		for c, rest := cuts, wire; len(rest) > 0; {
			k := len(rest)
			if cuts != 0 {
				k = min(k, 1+int(c&3))
				c = c>>2 | c<<62
			}
			if _, err := peer.Write(rest[:k]); err != nil {
				return
			}
			rest = rest[k:]
		}
		peer.(*net.UnixConn).CloseWrite()
	}()
	var pongs atomic.Int32
	fr := testReader(rc, false, 4<<10, &pongs)
	for {
		if cuts != 0 {
			rc.SetReadDeadline(time.Now().Add(200 * time.Microsecond))
		}
		data, flags, err := fr.next()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return chunks, err.Error()
		}
		chunks = append(chunks, flags.String()+" "+string(data))
	}
}

// FuzzReaderSplit: the frame reader gives the same chunks and the same end
// whether the frames arrive at once or in pieces with reads interrupted
// between them (the state kept across a deadline is complete).
func FuzzReaderSplit(f *testing.F) {
	wire, _ := readerSteps(false)
	f.Add(wire, uint64(0x1b1b1b1b1b1b1b1b))
	f.Add(wire, uint64(1))
	for _, s := range []string{
		"\x01\x03hel\x89\x00\x80\x02lo",
		"\x82\x7e\x00\x03abc",
		"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x01",
		"\x09\x00",
		"\x88\x01\x03",
		"\x88\x02\x03\xed",
		"\x82\x05ab",
	} {
		f.Add([]byte(s), uint64(0xe4e4e4e4e4e4e4e4))
	}
	f.Fuzz(func(t *testing.T, wire []byte, cuts uint64) {
		if len(wire) > 4<<10 || cuts == 0 {
			return
		}
		whole, wholeEnd := readConversation(t, wire, 0)
		split, splitEnd := readConversation(t, wire, cuts)
		if !slices.Equal(whole, split) || wholeEnd != splitEnd {
			t.Fatalf("in one write: %q, %s\nin pieces:    %q, %s", whole, wholeEnd, split, splitEnd)
		}
	})
}
