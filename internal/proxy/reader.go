package proxy

import (
	"io"
	"sync"
)

// burstBufSize is the read size of a link that is streaming.
const burstBufSize = 64 << 10

var burstPool = sync.Pool{New: func() any { b := make([]byte, burstBufSize); return &b }}

// burstReader reads a link for a Decoder with few system calls while data
// streams in, without holding a large buffer on an idle link: when its
// buffer is drained it returns it to a pool and reads straight into the
// caller's buffer; a read that fills the caller's buffer suggests more is
// waiting, so the next read goes through a pooled 64 KiB buffer.
type burstReader struct {
	r     io.Reader
	buf   *[]byte
	rd    int
	wr    int
	burst bool
}

func (b *burstReader) Read(p []byte) (int, error) {
	if b.rd < b.wr {
		n := copy(p, (*b.buf)[b.rd:b.wr])
		b.rd += n
		if b.rd == b.wr {
			b.release()
		}
		return n, nil
	}
	if !b.burst || len(p) >= burstBufSize/4 {
		// Idle link, or a large read (the rest of a big frame): straight
		// into the caller's buffer.
		n, err := b.r.Read(p)
		b.burst = n == len(p)
		return n, err
	}
	if b.buf == nil {
		b.buf = burstPool.Get().(*[]byte)
	}
	n, err := b.r.Read(*b.buf)
	b.burst = n == len(*b.buf)
	b.rd, b.wr = 0, n
	m := copy(p, (*b.buf)[:n])
	b.rd = m
	if b.rd == b.wr {
		b.release()
	}
	return m, err
}

func (b *burstReader) release() {
	if b.buf != nil {
		burstPool.Put(b.buf)
		b.buf = nil
	}
	b.rd, b.wr = 0, 0
}

// buffered returns the bytes read from the link and not yet returned.
func (b *burstReader) buffered() int { return b.wr - b.rd }
