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
// given and in declaration order.
func (r *run) exchangeH1(ctx context.Context, req *outRequest, conn net.Conn) (*exchange, error) {
	if conn == nil {
		dctx, cancel := context.WithTimeout(ctx, r.env.ConnectTimeout)
		c, err := transport.Dial(dctx, r.a, req.ep, transport.DialOptions{ALPN: []string{"http/1.1"}}, &r.timing)
		cancel()
		if err != nil {
			return nil, err
		}
		conn = c
	}
	rctx, t := r.newRequestCtx(ctx, req)
	// On cancellation unblock I/O at once (without a TLS close_notify that
	// would let the peer end the body normally); release closes.
	stopClose := context.AfterFunc(rctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	abort := func(err error) (*exchange, error) {
		stopClose()
		conn.Close()
		err = causeOf(rctx, err)
		t.stop()
		t.cancel(nil)
		return nil, err
	}
	r.txnStart = time.Now()
	bw := bwPool.Get().(*bufio.Writer)
	bw.Reset(conn)
	err := writeH1(bw, req)
	bw.Reset(nil)
	bwPool.Put(bw)
	if err != nil {
		return abort(err)
	}
	br := brPool.Get().(*bufio.Reader)
	br.Reset(conn)
	resp, err := readH1Response(br, &http.Request{Method: req.method})
	if err != nil {
		br.Reset(nil)
		brPool.Put(br)
		return abort(err)
	}
	return r.finishExchange(rctx, t, resp, func() {
		stopClose()
		conn.Close()
		br.Reset(nil)
		brPool.Put(br)
	}), nil
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
