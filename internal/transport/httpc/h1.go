package httpc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/securestreams/ss/internal/transport"
)

var (
	bwPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
	brPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
)

// exchangeH1 sends req as HTTP/1.1 on its own connection (conn, or a new
// one) and reads the response headers. The request is written by hand so
// that exactly the headers of docs/streams.md §11.2.2 go out, with names as
// given and in declaration order. It runs on the attempt's goroutine and
// starts none: the limits are the connection's deadlines (h1Conn).
func (r *run) exchangeH1(ctx context.Context, req *outRequest, conn net.Conn) (*exchange, error) {
	if conn == nil {
		dctx, cancel := transport.CutTimeout(ctx, r.sink, r.env.ConnectTimeout)
		c, err := transport.Dial(dctx, r.a, req.ep, transport.DialOptions{ALPN: []string{"http/1.1"}}, &r.timing)
		cancel()
		if err != nil {
			return nil, err
		}
		conn = c
	}
	c := &h1Conn{conn: conn}
	c.unhook = transport.AfterCut(ctx, r.sink, c.cutNow)
	r.startTxn()
	// The header limit runs from the end of the request body (or now,
	// without one), over the rest of the write and the wait for the head.
	if req.body == nil {
		c.limit(r.env.HeaderTimeout, errHeaderTimeout, true)
	} else {
		d := r.env.HeaderTimeout
		setOnEnd(req.body.src, func() { c.limit(d, errHeaderTimeout, true) })
	}
	bw := bwPool.Get().(*bufio.Writer)
	bw.Reset(conn)
	err := writeH1(bw, req)
	bw.Reset(nil)
	bwPool.Put(bw)
	if err != nil {
		return nil, c.abort(ctx, err)
	}
	c.br = brPool.Get().(*bufio.Reader)
	c.br.Reset(conn)
	r.h1req.Method = req.method
	resp, err := readH1Response(c.br, &r.h1req)
	if err != nil {
		return nil, c.abort(ctx, err)
	}
	r.endTxn()
	r.status = resp.StatusCode
	ex := &exchange{resp: resp, ctx: ctx, bodyIdle: r.bodyIdle(), h1: c}
	if ex.bodyIdle <= 0 {
		c.limit(0, nil, false) // no limit on body reads
	}
	return ex, nil
}

// h1Conn is the connection of one HTTP/1.1 exchange. Its limits are the
// connection's deadlines, so they cost no timer, context or goroutine of
// their own. A cut of the attempt sets a deadline in the past, which
// unblocks any I/O at once (without a TLS close_notify that would let the
// peer end the body normally) and which a later limit must not undo.
type h1Conn struct {
	conn   net.Conn
	br     *bufio.Reader // the response's reader, from brPool
	unhook func() bool   // unregisters cutNow (transport.AfterCut)

	mu  sync.Mutex // guards the deadlines against cutNow, which runs on another goroutine
	cut bool
	lim error     // the limit the deadline set is for
	due time.Time // its deadline, zero for none
}

// cutNow is run when the attempt is cut.
func (c *h1Conn) cutNow() {
	c.mu.Lock()
	c.cut = true
	c.conn.SetDeadline(time.Unix(1, 0))
	c.mu.Unlock()
}

// limit sets the deadline of reads (and of writes, with write) to d from
// now for the limit lim; d 0 clears it.
func (c *h1Conn) limit(d time.Duration, lim error, write bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return
	}
	var due time.Time
	if d > 0 {
		due = time.Now().Add(d)
	}
	c.lim, c.due = lim, due
	if write {
		c.conn.SetDeadline(due)
	} else {
		c.conn.SetReadDeadline(due)
	}
}

// why says why I/O failed with err: a limit whose deadline passed, or the
// cut of the attempt (with ctx's cause).
func (c *h1Conn) why(ctx context.Context, err error) error {
	c.mu.Lock()
	cut, lim, due := c.cut, c.lim, c.due
	c.mu.Unlock()
	if !cut && lim != nil && !due.IsZero() && !time.Now().Before(due) {
		return fmt.Errorf("%w (%v)", lim, err)
	}
	return causeOf(ctx, err)
}

// close unregisters the cut hook and closes the connection.
func (c *h1Conn) close() {
	c.unhook()
	c.conn.Close()
}

// release returns the reader to its pool; the response body must not be
// read after.
func (c *h1Conn) release() {
	if c.br != nil {
		c.br.Reset(nil)
		brPool.Put(c.br)
		c.br = nil
	}
}

// abort ends an exchange that failed with err before its response, and
// returns err with its reason.
func (c *h1Conn) abort(ctx context.Context, err error) error {
	err = c.why(ctx, err)
	c.close()
	c.release()
	return err
}

// writeH1 writes the request line, headers and body.
func writeH1(bw *bufio.Writer, req *outRequest) error {
	bw.WriteString(req.method)
	bw.WriteByte(' ')
	bw.WriteString(req.ep.Path)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(req.host)
	bw.WriteString("\r\n")
	for _, h := range req.headers {
		bw.WriteString(h.name)
		bw.WriteString(": ")
		bw.WriteString(h.value)
		bw.WriteString("\r\n")
	}
	bw.WriteString("Connection: close\r\n")
	b := req.body
	if b == nil {
		bw.WriteString("\r\n")
		return bw.Flush()
	}
	if b.contentType != "" {
		bw.WriteString("Content-Type: ")
		bw.WriteString(b.contentType)
		bw.WriteString("\r\n")
	}
	chunked := b.length < 0
	if chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	} else {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(b.length, 10))
		bw.WriteString("\r\n\r\n")
	}
	var hex [16]byte
	for {
		p, err := b.src.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if len(p) == 0 {
			continue
		}
		if chunked {
			bw.Write(strconv.AppendInt(hex[:0], int64(len(p)), 16))
			bw.WriteString("\r\n")
			bw.Write(p)
			bw.WriteString("\r\n")
		} else {
			bw.Write(p)
		}
	}
	if chunked {
		bw.WriteString("0\r\n\r\n")
	}
	return bw.Flush()
}

// maxInformational bounds the 1xx responses skipped before the final one: a
// peer sending an endless run of them fails the request instead of keeping
// it waiting.
const maxInformational = 16

// readH1Response reads response heads from br until the final one (1xx
// other than 101 are skipped, at most maxInformational of them).
func readH1Response(br *bufio.Reader, hreq *http.Request) (*http.Response, error) {
	for i := 0; ; i++ {
		resp, err := http.ReadResponse(br, hreq)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
		resp.Body.Close() // 1xx: skipped
		if i >= maxInformational {
			return nil, fmt.Errorf("ss: http: more than %d informational (1xx) responses", maxInformational)
		}
	}
}
