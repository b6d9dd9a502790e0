package ws

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/securestreams/ss/internal/event"
)

// ErrFraming is wrapped by CheckFraming errors (tx SOM/EOM misuse, docs/streams.md §11.6).
var ErrFraming = errors.New("ss: ws: framing")

// CheckFraming validates one tx chunk's flags against the message state:
// open says whether a message was started (SOM) and not yet finished (EOM).
// It refuses SOM while a message is open and a continuation (no SOM) while
// none is open, and returns nil when the chunk is acceptable. Only SOM and EOM
// are looked at. The stream runtime may call it at Send time; RunConn calls
// it again for every chunk and drops (and logs) refused ones.
func CheckFraming(open bool, flags event.Flags) error {
	som := flags&event.SOM != 0
	if som && open {
		return fmt.Errorf("%w: chunk with SOM while a message is still open (expected a continuation without SOM)", ErrFraming)
	}
	if !som && !open {
		return fmt.Errorf("%w: chunk without SOM while no message is open (expected SOM)", ErrFraming)
	}
	return nil
}

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// maxCopyChunk bounds the masking buffer: a client frame larger than this is
// masked and written in pieces (still one frame).
const maxCopyChunk = 64 << 10

// frameWriter writes every frame of one connection: data frames from the tx
// goroutine, pongs and close replies from the reader, pings and the final
// close from RunConn. gorilla's own writer is not used for data because it
// splits a message into frames at its buffer size and cannot end a frame
// without ending the message; one tx chunk must be exactly one frame.
// All writes hold mu, so a frame written in several Write calls is never
// interleaved with another.
type frameWriter struct {
	mu          sync.Mutex
	conn        net.Conn
	client      bool // mask frames (RFC 6455 §5.3)
	buf         []byte
	rng         *rand.ChaCha8
	deadlineSet bool // a control write left a write deadline on conn
	closeSent   bool
	// tail is the unwritten end of a frame a non-blocking write (tryData)
	// could not finish: every other write sends it first (direct.go).
	tail []byte
	// nb is tryData's non-blocking write, bound once (direct.go).
	nb nonblockWrite
}

func newFrameWriter(conn net.Conn, client bool) *frameWriter {
	w := &frameWriter{conn: conn, client: client}
	if client {
		var seed [32]byte
		_, _ = crand.Read(seed[:]) // never fails (Go ≥ 1.24)
		w.rng = rand.NewChaCha8(seed)
	}
	return w
}

// errCloseSent is returned for writes after the close frame.
var errCloseSent = errors.New("ss: ws: close frame already sent")

// writeData writes one data frame with no write deadline.
func (w *frameWriter) writeData(op byte, fin bool, data []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closeSent {
		return errCloseSent
	}
	if w.deadlineSet {
		w.deadlineSet = false
		if err := w.conn.SetWriteDeadline(time.Time{}); err != nil {
			return err
		}
	}
	return w.writeLocked(op, fin, data)
}

// writeControl writes one control frame with a write deadline.
func (w *frameWriter) writeControl(op byte, data []byte, deadline time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closeSent {
		return errCloseSent
	}
	w.deadlineSet = true
	if err := w.conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	if op == opClose {
		w.closeSent = true
	}
	return w.writeLocked(op, true, data)
}

// header writes a frame header into hdr and returns its length: FIN and
// the opcode, the payload length l in its shortest form and, for a client,
// the mask bit and a fresh masking key (the header's last 4 bytes).
func (w *frameWriter) header(hdr *[14]byte, op byte, fin bool, l int) int {
	hdr[0] = op
	if fin {
		hdr[0] |= 0x80
	}
	n := 2
	switch {
	case l <= 125:
		hdr[1] = byte(l)
	case l <= 0xffff:
		hdr[1] = 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(l))
		n = 4
	default:
		hdr[1] = 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(l))
		n = 10
	}
	if w.client {
		hdr[1] |= 0x80
		binary.LittleEndian.PutUint32(hdr[n:], uint32(w.rng.Uint64()))
		n += 4
	}
	return n
}

func (w *frameWriter) writeLocked(op byte, fin bool, data []byte) error {
	if err := w.flushTailLocked(); err != nil {
		return err
	}
	var hdr [14]byte
	n := w.header(&hdr, op, fin, len(data))
	if !w.client {
		if len(data) <= 512 {
			b := append(append(w.buf[:0], hdr[:n]...), data...)
			w.buf = b[:0]
			_, err := w.conn.Write(b)
			return err
		}
		bufs := net.Buffers{hdr[:n], data}
		_, err := bufs.WriteTo(w.conn)
		return err
	}
	k := [4]byte(hdr[n-4 : n])
	first := min(len(data), maxCopyChunk)
	if cap(w.buf) < n+first {
		w.buf = make([]byte, 0, max(n+first, 256))
	}
	b := append(w.buf[:0], hdr[:n]...)
	b = b[:n+first]
	maskCopy(b[n:], data[:first], k, 0)
	if _, err := w.conn.Write(b); err != nil {
		return err
	}
	for pos := first; pos < len(data); {
		end := min(len(data), pos+maxCopyChunk)
		b = b[:end-pos]
		maskCopy(b, data[pos:end], k, pos)
		if _, err := w.conn.Write(b); err != nil {
			return err
		}
		pos = end
	}
	return nil
}

// maskCopy sets dst[i] = src[i] ^ key[(pos+i)%4]; len(dst) == len(src).
func maskCopy(dst, src []byte, key [4]byte, pos int) {
	var rk [4]byte
	for i := range rk {
		rk[i] = key[(pos+i)&3]
	}
	k32 := uint64(binary.LittleEndian.Uint32(rk[:]))
	k64 := k32 | k32<<32
	dst = dst[:len(src)]
	i := 0
	for ; i+32 <= len(src); i += 32 {
		s, d := src[i:i+32:i+32], dst[i:i+32:i+32]
		le := binary.LittleEndian
		le.PutUint64(d[0:], le.Uint64(s[0:])^k64)
		le.PutUint64(d[8:], le.Uint64(s[8:])^k64)
		le.PutUint64(d[16:], le.Uint64(s[16:])^k64)
		le.PutUint64(d[24:], le.Uint64(s[24:])^k64)
	}
	for ; i+8 <= len(src); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(src[i:])^k64)
	}
	for ; i < len(src); i++ {
		dst[i] = src[i] ^ rk[i&3]
	}
}
