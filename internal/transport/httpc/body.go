package httpc

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// bodySource yields the request body as pieces; io.EOF ends it. Pieces are
// only valid until the next call.
type bodySource interface {
	next() ([]byte, error)
}

// txBody pulls the request body from the stream's tx queue, applying the
// multipart framing and the Content-Length check.
type txBody struct {
	ctx   context.Context
	tx    transport.TxSource
	first *transport.Chunk // peeked chunk, consumed by the first next

	declared int64 // -1: unknown
	total    int64

	// multipart
	boundary string
	part     *policy.Streamtype // streamtype of the current part
	parts    int
	inPart   bool

	queued [][]byte // framing pieces to emit before more chunks
	done   bool
	// onEnd runs once when the body has been fully produced.
	onEnd func()
	// onRideshare, when set, is told the streamtype whose message comes
	// next in a rideshare chain.
	onRideshare func(name string)
}

func (b *txBody) next() ([]byte, error) {
	for {
		if len(b.queued) > 0 {
			p := b.queued[0]
			b.queued = b.queued[1:]
			return p, nil
		}
		if b.done {
			return nil, io.EOF
		}
		var c transport.Chunk
		if b.first != nil {
			c, b.first = *b.first, nil
		} else {
			var err error
			c, err = b.tx.Next(b.ctx)
			if err != nil {
				return nil, err
			}
		}
		b.total += int64(len(c.Data))
		if b.declared >= 0 && b.total > b.declared {
			return nil, fmt.Errorf("%w: more than the announced %d bytes", ErrBodyLength, b.declared)
		}
		if b.boundary != "" && !b.inPart {
			b.queued = append(b.queued, b.partHeader())
			b.inPart = true
		}
		if len(c.Data) > 0 {
			b.queued = append(b.queued, c.Data)
		}
		if c.Flags&event.EOM != 0 {
			if b.boundary != "" {
				b.inPart = false
				if b.part.Rideshare != nil {
					b.part = b.part.Rideshare
					if b.onRideshare != nil {
						b.onRideshare(b.part.Name)
					}
					continue
				}
				b.queued = append(b.queued, []byte("\r\n--"+b.boundary+"--\r\n"))
			}
			if b.declared >= 0 && b.total != b.declared {
				return nil, fmt.Errorf("%w: %d bytes sent, %d announced", ErrBodyLength, b.total, b.declared)
			}
			b.done = true
			if b.onEnd != nil {
				b.onEnd()
			}
		}
	}
}

// partHeader renders the multipart part header of §11.2.6.
func (b *txBody) partHeader() []byte {
	st := b.part
	s := make([]byte, 0, 96+len(b.boundary)+len(st.HTTPMultipartName)+len(st.HTTPMultipartFilename)+len(st.HTTPMimeContentType))
	if b.parts > 0 {
		s = append(s, "\r\n"...)
	}
	b.parts++
	s = append(s, "--"...)
	s = append(s, b.boundary...)
	s = append(s, "\r\nContent-Disposition: form-data; name=\""...)
	s = append(s, st.HTTPMultipartName...)
	s = append(s, '"')
	if st.HTTPMultipartFilename != "" {
		s = append(s, "; filename=\""...)
		s = append(s, st.HTTPMultipartFilename...)
		s = append(s, '"')
	}
	if st.HTTPMimeContentType != "" {
		s = append(s, "\r\nContent-Type: "...)
		s = append(s, st.HTTPMimeContentType...)
	}
	s = append(s, "\r\n\r\n"...)
	return s
}

// bytesBody replays a buffered body.
type bytesBody struct {
	b     []byte
	done  bool
	onEnd func()
}

func (b *bytesBody) next() ([]byte, error) {
	if b.done {
		return nil, io.EOF
	}
	b.done = true
	if b.onEnd != nil {
		b.onEnd()
	}
	if len(b.b) == 0 {
		return nil, io.EOF
	}
	return b.b, nil
}

// bodyReader adapts a bodySource to io.ReadCloser for net/http round trippers.
type bodyReader struct {
	src bodySource
	cur []byte
	err error
	// failed receives an error of the source other than io.EOF, so that the
	// attempt reports it rather than the round tripper's rendering of it.
	failed *errBox
	// abort cancels the request, so that a failing body resets the stream
	// instead of ending it as if complete.
	abort func(error)
}

// errBox holds an error set by another goroutine.
type errBox struct {
	mu  sync.Mutex
	err error
}

func (b *errBox) set(err error) {
	b.mu.Lock()
	b.err = err
	b.mu.Unlock()
}

func (b *errBox) get() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func (r *bodyReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.cur, r.err = r.src.next()
		if r.err != nil && r.err != io.EOF && r.failed != nil {
			r.failed.set(r.err)
			if r.abort != nil {
				r.abort(r.err)
			}
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

func (r *bodyReader) Close() error { return nil }

const boundaryChars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newBoundary returns 32 random characters from [0-9A-Za-z].
func newBoundary() string {
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	var b strings.Builder
	b.Grow(len(raw))
	for _, x := range raw {
		b.WriteByte(boundaryChars[int(x)%len(boundaryChars)])
	}
	return b.String()
}

// planBody decides whether the request has a body and how it is framed
// (docs/streams.md §11.2.3). It may block for the first tx chunk to learn the
// length of a whole-message send.
func (r *run) planBody(ctx context.Context, method string) (*bodyPlan, error) {
	a, st := r.a, r.a.Type
	if !isBodyMethod(method) || a.Tx == nil {
		return nil, nil
	}
	multipart := isMultipart(st)
	mappedCL := mappedContentLength(a)
	hint := a.Tx.LenHint()
	if !(hint > 0 || a.Tx.Pending() || multipart || mappedCL > 0) {
		return nil, nil
	}
	first, err := a.Tx.Next(ctx)
	if err != nil {
		return nil, err
	}
	length := int64(-1)
	switch {
	case hint > 0:
		length = hint
	case first.Flags&event.SOM != 0 && first.Len >= 0:
		length = first.Len
	case first.Flags&event.EOM != 0:
		length = int64(len(first.Data))
	case mappedCL > 0:
		length = mappedCL
	}
	tb := &txBody{ctx: ctx, tx: a.Tx, first: &first, declared: length, part: st}
	if rs, ok := r.sink.(rideshareSetter); ok && st.Rideshare != nil {
		tb.onRideshare = rs.SetRideshare
	}
	p := &bodyPlan{length: length, src: tb}
	switch {
	case multipart:
		tb.boundary = newBoundary()
		p.contentType = "multipart/form-data; boundary=" + tb.boundary
		p.length = -1
	case st.HTTPWWWFormURLEncoded:
		p.contentType = "application/x-www-form-urlencoded"
		if length < 0 {
			// Exactly one Content-Length is required: collect the body.
			buf, err := drain(tb)
			if err != nil {
				return nil, err
			}
			p.length = int64(len(buf))
			p.src = &bytesBody{b: buf}
		}
	case st.HTTPNoContentLength:
		p.length = -1
	}
	if st.AllowRedirects {
		// A 307/308 redirect resends the body: keep it.
		if _, ok := p.src.(*bytesBody); !ok {
			buf, err := drain(p.src)
			if err != nil {
				return nil, err
			}
			p.src = &bytesBody{b: buf}
		}
	}
	return p, nil
}

func drain(src bodySource) ([]byte, error) {
	var buf []byte
	for {
		p, err := src.next()
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		buf = append(buf, p...)
	}
}

// rideshareSetter is implemented by a Sink that tracks the streamtype of the
// message being sent in a rideshare chain (Stream.Rideshare, docs/streams.md
// §11.2.6). It may be called from another goroutine than Run's.
type rideshareSetter interface{ SetRideshare(name string) }
