package ws

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fuzzPeer performs the server half of a handshake on c, then writes data
// (arbitrary frames) and closes c (the end of the stream of frames).
func fuzzPeer(c net.Conn, data []byte) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n"
	// Drain what the client writes (pongs, close replies) so its writes
	// never wait on the pipe; closing c ends both.
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	c.Write(append([]byte(resp), data...))
}

// FuzzReader feeds arbitrary bytes, as frames from a server after a valid
// handshake, to the ws client's reader (frameReader, the message
// pump, the read limit): it must never panic, never deliver more
// payload than it was sent, and always end.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"\x81\x05hello",                            // text
		"\x01\x03hel\x80\x02lo",                    // fragmented
		"\x82\x7e\x00\x04abcd",                     // 16-bit length
		"\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff", // 63-bit length: over the read limit
		"\x89\x00\x8a\x00",                         // ping, pong
		"\x88\x02\x03\xe8",                         // close 1000
		"\x88\x01\x03",                             // bad close payload
		"\x81\x85\x01\x02\x03\x04abcde",            // masked from a server: refused
		"\x80\x01x",                                // continuation without start
		"\x8f\x00",                                 // reserved opcode
		"\xc1\x01x",                                // RSV1 without extension
		"\x82\x7e\x00\x03abc",                      // 16-bit form of a short length
		"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x01", // length ≥ 2^63
		"\x09\x00",                                 // fragmented ping
		"\x89\x7e\x00\x7e",                         // ping over 125 bytes
		"\x88\x02\x03\xed",                         // close code 1005 may not be sent
		"\x01\x01a\x89\x00\x80\x01b",               // ping inside a fragmented message
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st := wsType("127.0.0.1:1")
		st.WSMaxRxMessage = 1 << 16
		a := attempt(st, newTx())
		cli, srv := net.Pipe()
		go fuzzPeer(srv, data)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d := websocket.Dialer{NetDialContext: func(context.Context, string, string) (net.Conn, error) { return cli, nil }}
		c, _, err := d.DialContext(ctx, "ws://127.0.0.1:1/", nil)
		if err != nil {
			cli.Close()
			return
		}
		sink := newSink()
		done := make(chan struct{})
		go func() {
			defer close(done)
			RunConn(ctx, c, a, sink)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("RunConn did not end")
		}
		n := 0
		sink.mu.Lock()
		for _, p := range sink.data {
			n += len(p)
		}
		sink.mu.Unlock()
		if n > len(data) {
			t.Fatalf("%d payload bytes delivered from %d bytes of frames", n, len(data))
		}
	})
}
