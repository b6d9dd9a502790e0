package httpc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// rxBufPool holds read buffers; data handed to the sink is always copied
// out of them, since the sink may retain it.
var rxBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// deliver reports a final response (docs/streams.md §11.2.4 steps 3–6): captured
// metadata, the mapped user state, CONNECTED, the body, QOS_ACK/NACK_REMOTE.
func (r *run) deliver(ctx context.Context, ex *exchange) transport.Result {
	pings := &r.pings // in the run's allocation: no allocation of its own
	defer pings.stop()
	defer ex.close()
	st, sink := r.a.Type, r.sink
	resp := ex.resp
	code := resp.StatusCode
	if st.HTTPExpect != 0 && code != st.HTTPExpect {
		// http_expect: any other status fails the attempt like a connection
		// failure (UNREACHABLE, then the retry policy), as the lws README
		// describes; captive portal detection relies on it
		// (docs/lws-differences.md).
		return fail(fmt.Errorf("%w (http_expect is %d)", &StatusError{Code: code, Status: resp.Status}, st.HTTPExpect))
	}
	for _, m := range st.Metadata {
		if isStatusItem(m) {
			sink.SetMetadata(m.Name, strconv.Itoa(code))
			continue
		}
		if m.Header == "" {
			continue
		}
		if vs := headerValues(resp.Header, m.Header); len(vs) > 0 {
			sink.SetMetadata(m.Name, vs[0])
		}
	}
	if st.DirectProtoStr {
		for k, vs := range resp.Header {
			if len(vs) > 0 {
				sink.SetMetadata(strings.ToLower(k)+":", vs[0])
			}
		}
	}
	for _, e := range st.HTTPRespMap {
		if e.Status == code {
			sink.State(event.State(e.State), 0)
			break
		}
	}
	sink.State(event.Connected, 0)
	if ps, ok := sink.(pingSetter); ok && ex.ping != nil {
		// Validity keep-alive (docs/streams.md §7): the stream asks for a PING
		// when svalidping passes; the PING ACK confirms the connection.
		ps.SetPing(func() {
			pings.start(func() {
				if ex.ping(ex.ctx) == nil {
					sink.ValidityConfirmed()
				}
			})
		})
	}

	var err error
	boundary := ""
	if st.HTTPMultipartSSIn {
		boundary = multipartBoundary(resp.Header.Get("Content-Type"))
	}
	if boundary != "" {
		err = r.rxMultipart(ctx, ex, boundary)
	} else {
		err = r.rxBody(ctx, ex)
	}
	if err != nil {
		return fail(err)
	}
	ok := code >= 200 && code <= 299
	if st.HTTPExpect != 0 {
		ok = true // checked above
	}
	if ok {
		sink.State(event.QoSAckRemote, 0)
		return transport.Result{Completed: true}
	}
	nack := &StatusError{Code: code, Status: resp.Status}
	if se, ok := sink.(stateErrSink); ok {
		se.StateErr(event.QoSNackRemote, 0, nack) // Event.Err of the NACK
	} else {
		sink.State(event.QoSNackRemote, 0)
	}
	return transport.Result{Completed: true, Err: nack}
}

// isStatusItem reports a metadata item that receives the response status
// code: one named ":status", or one mapped to the ":status" pseudo-header.
func isStatusItem(m *policy.MetadataItem) bool {
	return m.Name == ":status" || m.Header == ":status"
}

// headerValues looks name up case-insensitively.
func headerValues(h http.Header, name string) []string {
	if vs, ok := h[http.CanonicalHeaderKey(name)]; ok {
		return vs
	}
	for k, vs := range h {
		if strings.EqualFold(k, name) {
			return vs
		}
	}
	return nil
}

// readBody reads from the response body, keeping the idle limit fed.
func (r *run) readBody(ex *exchange, buf []byte) (int, error) {
	ex.armBody()
	n, err := ex.resp.Body.Read(buf)
	ex.disarmBody()
	if err != nil && err != io.EOF {
		err = ex.readErr(err)
	}
	return n, err
}

// rxBody delivers the body: SOM on the first chunk, then a zero-length EOM
// chunk; nothing for an empty body.
func (r *run) rxBody(ctx context.Context, ex *exchange) error {
	bp := rxBufPool.Get().(*[]byte)
	defer rxBufPool.Put(bp)
	buf := *bp
	flags := event.SOM
	any := false
	for {
		n, err := r.readBody(ex, buf)
		if n > 0 {
			data := make([]byte, n)
			copy(data, buf[:n])
			if e := r.sink.Rx(ctx, data, flags); e != nil {
				return e
			}
			flags = 0
			any = true
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if any {
		return r.sink.Rx(ctx, nil, event.EOM)
	}
	return nil
}

// multipartBoundary returns the boundary of a multipart/form-data or
// multipart/related content type, "" otherwise.
func multipartBoundary(ct string) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	if mt != "multipart/form-data" && mt != "multipart/related" {
		return ""
	}
	return params["boundary"]
}

// MaxMultipartBody bounds a multipart response body, which is held whole
// to be split into parts: a longer one fails the transaction with
// ErrTooLarge (docs/security-validation.md).
const MaxMultipartBody = 16 << 20

// rxMultipart delivers a multipart body as RELATED_START, then one SOM|EOM
// message per part (part headers included, preamble and epilogue
// discarded), the last one with RELATED_END (docs/streams.md §11.2.6).
func (r *run) rxMultipart(ctx context.Context, ex *exchange, boundary string) error {
	var body []byte
	bp := rxBufPool.Get().(*[]byte)
	defer rxBufPool.Put(bp)
	buf := *bp
	for {
		n, err := r.readBody(ex, buf)
		body = append(body, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if len(body) > MaxMultipartBody {
			return fmt.Errorf("%w: multipart response body over %d bytes (MaxMultipartBody)", ErrTooLarge, MaxMultipartBody)
		}
	}
	parts := splitMultipart(body, boundary)
	if len(parts) == 0 {
		return nil
	}
	if err := r.sink.Rx(ctx, nil, event.RelatedStart); err != nil {
		return err
	}
	for i, p := range parts {
		f := event.SOM | event.EOM
		if i == len(parts)-1 {
			f |= event.RelatedEnd
		}
		if err := r.sink.Rx(ctx, p, f); err != nil {
			return err
		}
	}
	return nil
}

// splitMultipart returns the parts of a multipart body, each including its
// headers. The CRLF before a delimiter belongs to the delimiter.
func splitMultipart(body []byte, boundary string) [][]byte {
	delim := []byte("--" + boundary)
	// Find the first delimiter: at the start or after a CRLF (preamble).
	var i int
	if bytes.HasPrefix(body, delim) {
		i = 0
	} else {
		j := bytes.Index(body, append([]byte("\r\n"), delim...))
		if j < 0 {
			return nil
		}
		i = j + 2
	}
	next := append([]byte("\r\n"), delim...)
	var parts [][]byte
	for {
		i += len(delim)
		if bytes.HasPrefix(body[i:], []byte("--")) {
			return parts // close delimiter; the epilogue is discarded
		}
		// Skip transport padding up to the end of the delimiter line.
		eol := bytes.Index(body[i:], []byte("\r\n"))
		if eol < 0 {
			return parts
		}
		start := i + eol + 2
		end := bytes.Index(body[start:], next)
		if end < 0 {
			return parts // unterminated part: dropped
		}
		parts = append(parts, append([]byte(nil), body[start:start+end]...))
		i = start + end + 2
	}
}

// retryAfter parses Retry-After as delta-seconds or an HTTP-date relative to
// the response's Date header (else now). Negative values count as 0.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		now = d
	}
	if d := t.Sub(now); d > 0 {
		return d
	}
	return 0
}

// stateErrSink is implemented by the stream runtime's Sink: a state with
// its cause in Event.Err.
type stateErrSink interface {
	StateErr(st event.State, ack uint32, err error)
}

// pingSetter is implemented by the stream runtime's Sink (stream.PingSetter).
type pingSetter interface{ SetPing(ping func()) }

// pinger runs at most one keep-alive at a time, never after stop, and stop
// waits for the running one.
type pinger struct {
	mu     sync.Mutex
	closed bool
	busy   bool
	wg     sync.WaitGroup
}

func (p *pinger) start(f func()) {
	p.mu.Lock()
	if p.closed || p.busy {
		p.mu.Unlock()
		return
	}
	p.busy = true
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		f()
		p.mu.Lock()
		p.busy = false
		p.mu.Unlock()
	}()
}

func (p *pinger) stop() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
}
