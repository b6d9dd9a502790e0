package ws

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss/internal/event"
)

// ErrProtocol is wrapped when the peer breaks RFC 6455 framing (reserved
// bits or opcodes, a masked frame from a server or an unmasked one from a
// client, a fragmented or oversized control frame, a continuation without
// a message, a length not in its shortest form or ≥ 2^63, a bad close
// payload). The connection is closed with code 1002 and the error is
// reported wrapped in ErrConnLost.
var ErrProtocol = errors.New("ss: ws: protocol error")

// readBufSize is the read buffer's size when gorilla's handshake buffer
// cannot be taken over (handshakeBuffer).
const readBufSize = 4 << 10

// frameReader reads the frames a peer sends on one connection and gives
// the data messages as rx chunks (next). gorilla performs the handshake
// only: its reader cannot go on after a read deadline fires, and a
// deadline is how a read on the application's goroutine is interrupted
// (pull.go). Every piece of state lives here, not on a stack: a read that
// fails with os.ErrDeadlineExceeded leaves a partial header in buf, the
// payload and mask positions of the frame under way and the chunk being
// gathered, and the next call goes on from there. Any other failure is
// final and returned again by every later call.
//
// One goroutine at a time calls next: the reader goroutine, then, once it
// handed the read role over (pull.go), Recv's callers one after the other.
type frameReader struct {
	conn   net.Conn
	w      *frameWriter // close frames on errors, pongs
	server bool         // the peer is a client: its frames must be masked
	limit  int64        // longest data message (ws_max_rx_message)
	pong   func()       // called for every PONG

	// buf[r:n] is read and not yet parsed.
	buf  []byte
	r, n int

	// The data frame under way: its header is parsed (inFrame) and remain
	// payload bytes are still to come; pos is how far into the payload it
	// is (the mask position).
	inFrame bool
	fin     bool
	masked  bool
	key     [4]byte
	pos     int
	remain  int64

	// The data message under way: open once a data frame without FIN
	// started it; msgLen counts its payload (the read limit); chunk gathers
	// the next rx chunk, first says that chunk is the message's first.
	open   bool
	msgLen int64
	chunk  []byte
	first  bool

	err error // the final error, once there is one
}

// newFrameReader returns the reader of c's connection, taking over the
// bytes gorilla's handshake read past the 101 response (a server may send
// frames right behind it) and the buffer that holds them.
func newFrameReader(c *websocket.Conn, w *frameWriter, server bool, limit int64, pong func()) *frameReader {
	f := &frameReader{conn: c.NetConn(), w: w, server: server, limit: limit, pong: pong, first: true}
	buf, r, n, ok := handshakeBuffer(c)
	switch {
	case ok && len(buf) >= 256:
		f.buf, f.r, f.n = buf, r, n
	default:
		f.buf = make([]byte, max(readBufSize, n-r))
		if ok {
			f.n = copy(f.buf, buf[r:n])
		}
	}
	return f
}

// handshakeBuffer returns the buffer of c's bufio.Reader and what it holds
// unread (buf[r:n]): bytes the handshake read past the response. gorilla
// does not export its reader; reading its fields is the way to keep those
// bytes (TestHandshakeBufferTaken fails if gorilla changes them). gorilla
// reads nothing more once this package reads the connection.
func handshakeBuffer(c *websocket.Conn) (buf []byte, r, n int, ok bool) {
	br := reflect.ValueOf(c).Elem().FieldByName("br")
	if !br.IsValid() || br.Kind() != reflect.Pointer || br.IsNil() {
		return nil, 0, 0, false
	}
	b := br.Elem()
	fb, fr, fw := b.FieldByName("buf"), b.FieldByName("r"), b.FieldByName("w")
	if !fb.IsValid() || !fr.IsValid() || !fw.IsValid() || fb.Kind() != reflect.Slice ||
		fb.Type().Elem().Kind() != reflect.Uint8 || fr.Kind() != reflect.Int || fw.Kind() != reflect.Int {
		return nil, 0, 0, false
	}
	buf, r, n = fb.Bytes(), int(fr.Int()), int(fw.Int())
	if r < 0 || r > n || n > len(buf) {
		return nil, 0, 0, false
	}
	return buf, r, n, true
}

// next returns the next rx chunk of a data message: SOM on a message's
// first chunk, EOM on its last; a chunk is at most RxChunkSize bytes, and a
// message that fits is one SOM|EOM chunk however many frames it came in.
// Control frames are handled on the way: a PING is answered with a PONG, a
// PONG calls pong, a CLOSE is answered and returned as a
// *websocket.CloseError. The chunk is the caller's. An error wrapping
// os.ErrDeadlineExceeded is not final: the next call resumes.
func (f *frameReader) next() ([]byte, event.Flags, error) {
	if f.err != nil {
		return nil, 0, f.err
	}
	for {
		if f.inFrame {
			if f.remain == 0 {
				f.inFrame = false
				if f.fin {
					data, flags := f.take(event.EOM)
					return data, flags, nil
				}
				continue
			}
			if len(f.chunk) == RxChunkSize {
				data, flags := f.take(0)
				return data, flags, nil
			}
			if err := f.payload(); err != nil {
				return nil, 0, f.fail(err)
			}
			continue
		}
		if err := f.header(); err != nil {
			return nil, 0, f.fail(err)
		}
	}
}

// take hands over the chunk gathered and its flags: those given, and SOM
// when it is the message's first.
func (f *frameReader) take(flags event.Flags) ([]byte, event.Flags) {
	c := f.chunk
	if c == nil {
		c = []byte{}
	}
	if f.first {
		flags |= event.SOM
	}
	f.first = flags&event.EOM != 0
	f.chunk = nil
	return c, flags
}

// fail keeps err as the final error unless it is a deadline (the read
// is resumed later).
func (f *frameReader) fail(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	if err == io.EOF {
		// The connection ended without a close frame.
		err = io.ErrUnexpectedEOF
	}
	f.err = err
	return err
}

// fill reads from the connection into buf, at least one byte or an error.
func (f *frameReader) fill() error {
	if f.r == f.n {
		f.r, f.n = 0, 0
	} else if f.n == len(f.buf) {
		f.n = copy(f.buf, f.buf[f.r:f.n])
		f.r = 0
	}
	for {
		m, err := f.conn.Read(f.buf[f.n:])
		f.n += m
		if m > 0 {
			return nil // an error comes again with the next read
		}
		if err != nil {
			return err
		}
	}
}

// need reads until buf holds k unparsed bytes (k ≤ 139, a whole control
// frame at most).
func (f *frameReader) need(k int) error {
	for f.n-f.r < k {
		if err := f.fill(); err != nil {
			return err
		}
	}
	return nil
}

// payload moves the data frame's next bytes into the chunk: those in buf,
// or when buf is empty and the chunk has room for at least half a buffer,
// straight from the connection.
func (f *frameReader) payload() error {
	k := int(min(f.remain, int64(RxChunkSize-len(f.chunk))))
	at := len(f.chunk)
	if avail := f.n - f.r; avail > 0 {
		k = min(k, avail)
		f.chunk = slices.Grow(f.chunk, k)[:at+k]
		if f.masked {
			maskCopy(f.chunk[at:], f.buf[f.r:f.r+k], f.key, f.pos)
		} else {
			copy(f.chunk[at:], f.buf[f.r:f.r+k])
		}
		f.r += k
		f.advance(k)
		return nil
	}
	if k < len(f.buf)/2 {
		return f.fill()
	}
	f.chunk = slices.Grow(f.chunk, k)
	m, err := f.conn.Read(f.chunk[at : at+k])
	if m > 0 {
		f.chunk = f.chunk[:at+m]
		if f.masked {
			maskCopy(f.chunk[at:], f.chunk[at:], f.key, f.pos)
		}
		f.advance(m)
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

func (f *frameReader) advance(k int) {
	f.remain -= int64(k)
	f.pos = (f.pos + k) & 3 // only the mask position is needed
}

// header reads and checks the next frame header. A data frame starts its
// payload (inFrame); a control frame is read whole and handled.
func (f *frameReader) header() error {
	if err := f.need(2); err != nil {
		return err
	}
	b0, b1 := f.buf[f.r], f.buf[f.r+1]
	fin, op, masked := b0&0x80 != 0, b0&0x0f, b1&0x80 != 0
	hl := 2
	switch b1 & 0x7f {
	case 126:
		hl += 2
	case 127:
		hl += 8
	}
	if masked {
		hl += 4
	}
	// Checks that need the first two bytes only come first, so that a bad
	// frame is refused before its length is read.
	control := op >= opClose
	switch {
	case b0&0x70 != 0:
		return f.protocolError(fmt.Sprintf("reserved bits 0x%02x set (no extension was negotiated)", b0&0x70))
	case (op > opBinary && op < opClose) || op > opPong:
		return f.protocolError(fmt.Sprintf("reserved opcode 0x%x", op))
	case control && !fin:
		return f.protocolError("fragmented control frame")
	case control && b1&0x7f > 125:
		return f.protocolError("control frame payload longer than 125 bytes")
	case op == opContinuation && !f.open:
		return f.protocolError("continuation frame with no message started")
	case (op == opText || op == opBinary) && f.open:
		return f.protocolError("data frame while a fragmented message is unfinished")
	case masked != f.server:
		if f.server {
			return f.protocolError("unmasked frame from a client")
		}
		return f.protocolError("masked frame from a server")
	}
	if err := f.need(hl); err != nil {
		return err
	}
	h := f.buf[f.r : f.r+hl]
	length := int64(b1 & 0x7f)
	switch length {
	case 126:
		length = int64(binary.BigEndian.Uint16(h[2:]))
		if length < 126 {
			return f.protocolError(fmt.Sprintf("length %d in the 16-bit form (not the shortest)", length))
		}
	case 127:
		l := binary.BigEndian.Uint64(h[2:])
		if l>>63 != 0 {
			return f.protocolError("64-bit length with the most significant bit set")
		}
		if l <= 0xffff {
			return f.protocolError(fmt.Sprintf("length %d in the 64-bit form (not the shortest)", l))
		}
		length = int64(l)
	}
	var key [4]byte
	if masked {
		key = [4]byte(h[hl-4:])
	}
	if control {
		if err := f.need(hl + int(length)); err != nil {
			return err
		}
		p := f.buf[f.r+hl : f.r+hl+int(length)]
		if masked {
			maskCopy(p, p, key, 0)
		}
		f.r += hl + int(length)
		return f.control(op, p)
	}
	f.r += hl
	if op != opContinuation {
		f.msgLen = 0
	}
	if length > f.limit-f.msgLen {
		// The limit is checked on the frame's header, before any of its
		// payload is delivered.
		_ = f.w.writeControl(opClose, websocket.FormatCloseMessage(websocket.CloseMessageTooBig, ""), time.Now().Add(controlWait))
		return websocket.ErrReadLimit
	}
	f.msgLen += length
	f.open = !fin
	f.inFrame, f.fin, f.masked, f.key, f.pos, f.remain = true, fin, masked, key, 0, length
	if f.chunk == nil {
		f.chunk = make([]byte, 0, min(length, RxChunkSize))
	}
	return nil
}

// control handles a control frame's payload p (in buf, valid until the
// next read).
func (f *frameReader) control(op byte, p []byte) error {
	switch op {
	case opPing:
		err := f.w.writeControl(opPong, p, time.Now().Add(controlWait))
		if err != nil && !errors.Is(err, errCloseSent) {
			return err
		}
	case opPong:
		f.pong()
	case opClose:
		code, text := websocket.CloseNoStatusReceived, ""
		switch {
		case len(p) == 1:
			return f.protocolError("close frame with a 1-byte payload (a code takes 2)")
		case len(p) >= 2:
			code, text = int(binary.BigEndian.Uint16(p)), string(p[2:])
			if !validCloseCode(code) {
				return f.protocolError(fmt.Sprintf("close code %d may not be sent", code))
			}
			if !utf8.ValidString(text) {
				return f.protocolError("close reason is not UTF-8")
			}
		}
		var reply []byte
		if code != websocket.CloseNoStatusReceived {
			reply = websocket.FormatCloseMessage(code, "")
		}
		_ = f.w.writeControl(opClose, reply, time.Now().Add(controlWait))
		return &websocket.CloseError{Code: code, Text: text}
	}
	return nil
}

// validCloseCode reports whether a peer may send code in a close frame
// (RFC 6455 §7.4, the IANA registry; as gorilla checked).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1013:
		return true
	}
	return code >= 3000 && code <= 4999
}

// protocolError closes the connection with code 1002 and returns the error.
func (f *frameReader) protocolError(msg string) error {
	data := websocket.FormatCloseMessage(websocket.CloseProtocolError, msg)
	if len(data) > 125 {
		data = data[:125]
	}
	_ = f.w.writeControl(opClose, data, time.Now().Add(controlWait))
	return fmt.Errorf("%w: %s", ErrProtocol, msg)
}
