package proxy

import (
	"encoding/binary"
	"errors"
	"io"
	mbits "math/bits"
	"strconv"
	"sync"
	"unsafe"

	"github.com/securestreams/ss/internal/bufpool"
	"github.com/securestreams/ss/internal/evloop"
)

const (
	// DefaultBufferSize is the read buffer a Decoder allocates on its first
	// read; it only grows in borrow mode, for frames larger than it.
	DefaultBufferSize = 4096
	// MinBufferSize is the smallest read buffer SetBufferSize accepts.
	MinBufferSize = 64
	// directReadMin: in owning mode, a frame body of at least this many
	// bytes that is not yet fully buffered is read straight into its own
	// allocation instead of through the read buffer (no copy).
	directReadMin = 1024
	// maxEmptyReads bounds consecutive (0, nil) reads before
	// io.ErrNoProgress.
	maxEmptyReads = 100
)

// Decoder reads SSSv1 frames travelling in one direction from an io.Reader.
//
// Ownership: by default every message returned by Next, and every byte slice
// in it, is newly allocated and belongs to the caller, who may keep it or
// hand it on (a large payload is read straight into its own allocation, so
// this costs no extra copy). After SetBorrow(true), Next reuses the message
// structs and its read buffer: the returned message and its Payload, Value
// and JSON slices are only valid until the next call to Next, SetBorrow or
// Reset; copy what you keep (Clone does). Strings are always copies.
//
// Errors: io.EOF at a frame boundary is the clean end of the stream; a frame
// cut by end of stream is a *FrameError wrapping ErrTruncated; malformed
// frames are *FrameError; other errors come from the reader. Every error is
// sticky: later calls return it again until Reset, except, in borrow mode,
// evloop.ErrWouldBlock from a non-blocking reader: the bytes of a partial
// frame stay buffered and Next can be called again once more are readable.
//
// A Decoder is not safe for concurrent use. Its memory is the read buffer
// (DefaultBufferSize unless SetBufferSize), allocated on the first read and
// kept while Next waits for data; in borrow mode a frame larger than it is
// read into a pooled buffer (internal/bufpool), at most MaxFrame bytes, which
// goes back to the pool as soon as everything in it has been decoded, so that
// a link waiting for data holds only the small buffer. In owning mode it
// never grows: a frame that does not fit is read straight into its own
// allocation.
//
// In borrow mode with a non-blocking reader (the event loop), a Decoder
// holds no memory between frames: when Next returns evloop.ErrWouldBlock
// with nothing of a frame buffered, its read buffer and its reused message
// structs go back to pools (the messages of the previous Next are invalid
// by then anyway), and the next read takes them again. An idle link costs
// the Decoder struct alone (PERFORMANCE.md, "Memory per proxied stream").
type Decoder struct {
	r      io.Reader
	dir    Direction
	lim    Limits
	borrow bool
	sc     *scratch

	size   int    // read buffer size; 0: DefaultBufferSize
	buf    []byte // buf[rd:wr] holds bytes read but not yet decoded
	small  []byte // the bufSize buffer, while buf is a pooled larger one
	pooled bool   // buf is from bufpool (borrow mode)
	rd, wr int
	pos    int64 // stream offset of buf[rd]
	err    error
}

// NewDecoder returns a Decoder reading frames sent in direction dir from r
// (a proxy reads ClientToProxy, a client ProxyToClient), checked against lim.
func NewDecoder(r io.Reader, dir Direction, lim Limits) *Decoder {
	return &Decoder{r: r, dir: dir, lim: lim}
}

// SetLimits replaces the limits for the following frames (a proxy sets the
// streamtype's proxy_buflen once STREAMTYPE has been resolved).
func (d *Decoder) SetLimits(lim Limits) { d.lim = lim }

// SetBorrow selects borrow mode (see Decoder): no allocation per frame, but
// messages are only valid until the next call.
func (d *Decoder) SetBorrow(on bool) {
	d.borrow = on
}

// SetBufferSize sets the read buffer size (at least MinBufferSize), taking
// effect when the buffer is next allocated: on the first read or after Reset.
// A smaller buffer saves memory per idle link; a larger one saves reads when
// many small frames arrive together.
func (d *Decoder) SetBufferSize(n int) { d.size = max(n, MinBufferSize) }

func (d *Decoder) bufSize() int {
	if d.size == 0 {
		return DefaultBufferSize
	}
	return d.size
}

// Reset discards buffered bytes and any sticky error and reads from r, as
// after a link re-establishment. It keeps the direction, limits and mode.
func (d *Decoder) Reset(r io.Reader) {
	d.r = r
	d.rd, d.wr, d.pos, d.err = 0, 0, 0, nil
	if d.pooled {
		bufpool.Put(d.buf)
		d.buf, d.small, d.pooled = d.small, nil, false
	}
	if len(d.buf) != d.bufSize() {
		d.buf = nil
	}
}

// releaseIdle hands a borrowing Decoder's buffers and message structs back
// to their pools. Only when nothing is buffered (rd == wr) and no message
// it returned is in use any more (inside Next).
func (d *Decoder) releaseIdle() {
	if d.pooled {
		bufpool.Put(d.buf)
		d.buf, d.small, d.pooled = d.small, nil, false
	}
	if d.buf != nil {
		putReadBuf(d.buf)
		d.buf = nil
	}
	d.rd, d.wr = 0, 0
	if d.sc != nil {
		*d.sc = scratch{}
		scratchPool.Put(d.sc)
		d.sc = nil
	}
}

// scratchPool holds the message structs of borrowing Decoders that wait
// for data.
var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// readBufPools hold the small read buffers of borrowing Decoders (64 B to
// 2 KiB, by power-of-two capacity; from 4 KiB on, internal/bufpool's
// classes are used), each as a pointer to its first byte.
var readBufPools [bufpool.MinClass]sync.Pool

const minReadBufClass = 6 // 64 B, MinBufferSize

// getReadBuf returns a buffer of length n for a borrowing Decoder.
func getReadBuf(n int) []byte {
	if n >= 1<<bufpool.MinClass {
		return bufpool.Get(n)
	}
	c := max(mbits.Len(uint(n-1)), minReadBufClass)
	if v := readBufPools[c].Get(); v != nil {
		return unsafe.Slice(v.(*byte), 1<<c)[:n]
	}
	return make([]byte, n, 1<<c)
}

// putReadBuf hands back a buffer from getReadBuf.
func putReadBuf(b []byte) {
	c := cap(b)
	if c >= 1<<bufpool.MinClass {
		bufpool.Put(b)
		return
	}
	if c < 1<<minReadBufClass || c&(c-1) != 0 {
		return
	}
	readBufPools[mbits.Len(uint(c-1))].Put(unsafe.SliceData(b[:c]))
}

// Buffered returns the number of bytes read from the reader but not yet
// decoded.
func (d *Decoder) Buffered() int { return d.wr - d.rd }

// Offset returns the stream offset of the next frame.
func (d *Decoder) Offset() int64 { return d.pos }

// Next returns the next message. See Decoder for ownership and errors.
func (d *Decoder) Next() (Message, error) {
	if d.err != nil {
		return nil, d.err
	}
	msg, err := d.next()
	if err != nil {
		if err != evloop.ErrWouldBlock || !d.borrow {
			d.err = err
		} else if d.rd == d.wr {
			d.releaseIdle() // between frames: hold nothing while idle
		}
		return nil, err
	}
	return msg, nil
}

func (d *Decoder) next() (Message, error) {
	if err := d.fill(HeaderLen); err != nil {
		return nil, d.readError(err, CodeOf(d.buf[d.rd:d.wr]), d.wr-d.rd)
	}
	c := Code(d.buf[d.rd])
	l := int(binary.BigEndian.Uint16(d.buf[d.rd+1 : d.rd+3]))
	if fe := checkHeader(d.dir, d.lim, c, l); fe != nil {
		fe.Offset = d.pos
		return nil, fe
	}
	total := HeaderLen + l
	if !d.borrow && d.wr-d.rd < total && (l >= directReadMin || total > len(d.buf)) {
		return d.direct(c, l)
	}
	if err := d.fill(total); err != nil {
		return nil, d.readError(err, c, d.wr-d.rd)
	}
	body := d.buf[d.rd+HeaderLen : d.rd+total]
	if d.borrow && d.sc == nil {
		d.sc = scratchPool.Get().(*scratch)
	}
	msg, fe := decodeBody(d.dir, d.lim, c, body, d.sc, !d.borrow)
	if fe != nil {
		fe.Offset = d.pos
		return nil, fe
	}
	d.rd += total
	d.pos += int64(total)
	if d.rd == d.wr {
		d.rd, d.wr = 0, 0
	}
	return msg, nil
}

// direct reads a large body into its own allocation; the message aliases it.
func (d *Decoder) direct(c Code, l int) (Message, error) {
	body := make([]byte, l)
	n := copy(body, d.buf[d.rd+HeaderLen:d.wr])
	d.rd, d.wr = 0, 0
	if m, err := io.ReadFull(d.r, body[n:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, d.readError(err, c, HeaderLen+n+m)
	}
	msg, fe := decodeBody(d.dir, d.lim, c, body, nil, false)
	if fe != nil {
		fe.Offset = d.pos
		return nil, fe
	}
	d.pos += int64(HeaderLen + l)
	return msg, nil
}

// CodeOf returns the code of the frame starting at b, or 0 when b is empty.
func CodeOf(b []byte) Code {
	if len(b) == 0 {
		return 0
	}
	return Code(b[0])
}

// readError turns a read failure into the error Next returns.
// have is the number of the frame's bytes received.
func (d *Decoder) readError(err error, c Code, have int) error {
	if err == io.EOF && have == 0 {
		return io.EOF
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FrameError{Dir: d.dir, Code: c, Offset: d.pos, Field: -1,
			Reason: "stream ended inside the frame after " + strconv.Itoa(have) + " bytes",
			Err:    ErrTruncated}
	}
	return err
}

// fill reads until at least n bytes are buffered, n ≤ MaxFrame.
func (d *Decoder) fill(n int) error {
	if d.wr-d.rd >= n {
		return nil
	}
	if d.pooled && d.rd == d.wr && n <= len(d.small) {
		// Everything in the pooled buffer is decoded (and the frames
		// borrowed from it are gone: this is the next Next).
		bufpool.Put(d.buf)
		d.buf, d.small, d.pooled = d.small, nil, false
		d.rd, d.wr = 0, 0
	}
	if d.rd+n > len(d.buf) {
		if n > len(d.buf) {
			size := max(d.bufSize(), n)
			if len(d.buf) > 0 {
				size = min(max(2*len(d.buf), n), MaxFrame)
			}
			var nb []byte
			if d.borrow && len(d.buf) > 0 {
				// At least the smallest pooled class: lws-sized frames
				// (4061 B payload, 4064 B in all) are just under it and
				// would otherwise be allocated for every frame.
				nb = bufpool.Get(max(size, 1<<bufpool.MinClass))
				// The pooled capacity is a power of two: a frame
				// over 64 KiB gets 128 KiB, of which MaxFrame is used.
				nb = nb[:min(cap(nb), MaxFrame)]
			} else if d.borrow {
				nb = getReadBuf(size)
			} else {
				nb = make([]byte, size)
			}
			d.wr = copy(nb, d.buf[d.rd:d.wr])
			switch {
			case d.pooled:
				bufpool.Put(d.buf)
			case d.borrow && len(d.buf) > 0:
				d.small = d.buf
			}
			d.buf, d.pooled = nb, d.borrow && len(d.buf) > 0
		} else {
			d.wr = copy(d.buf, d.buf[d.rd:d.wr])
		}
		d.rd = 0
	}
	empty := 0
	for d.wr-d.rd < n {
		m, err := d.r.Read(d.buf[d.wr:])
		if m < 0 || m > len(d.buf)-d.wr {
			return errors.New("ss: proxy: reader returned an invalid count")
		}
		d.wr += m
		if d.wr-d.rd >= n {
			return nil
		}
		if err != nil {
			return err
		}
		if m == 0 {
			empty++
			if empty >= maxEmptyReads {
				return io.ErrNoProgress
			}
		} else {
			empty = 0
		}
	}
	return nil
}

// Clone returns a deep copy of m, so that a message from a borrowing Decoder
// (or Parse) can be kept. It returns nil for an unknown type.
func Clone(m Message) Message {
	switch m := m.(type) {
	case *StreamType:
		c := *m
		return &c
	case *OnwardConnect:
		return &OnwardConnect{}
	case *Destroying:
		return &Destroying{}
	case *TxPayload:
		c := *m
		c.Payload = bytesField(m.Payload, true)
		return &c
	case *TxMetadata:
		c := *m
		c.Value = bytesField(m.Value, true)
		return &c
	case *TxCredit:
		c := *m
		return &c
	case *TimeoutUpdate:
		c := *m
		return &c
	case *PayloadLengthHint:
		c := *m
		return &c
	case *CreateResult:
		c := *m
		if m.Rideshares != nil {
			c.Rideshares = append([]string(nil), m.Rideshares...)
		}
		return &c
	case *ConnState:
		c := *m
		return &c
	case *RxCredit:
		c := *m
		return &c
	case *RxMetadata:
		c := *m
		c.Value = bytesField(m.Value, true)
		return &c
	case *RxPayload:
		c := *m
		c.Payload = bytesField(m.Payload, true)
		return &c
	case *Perf:
		c := *m
		c.JSON = bytesField(m.JSON, true)
		return &c
	}
	return nil
}
