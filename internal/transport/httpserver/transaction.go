package httpserver

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// rxChunk is the largest request body chunk delivered in one Rx.
const rxChunk = 16 << 10

// transaction runs one HTTP request/response (docs/streams.md §10.2 steps 2-6):
// request metadata, CONNECTED on the connection's first request, SERVER_TXN,
// the body as rx, then the response the application supplies. A non-nil
// error means the response could not be completed and the connection (h2:
// the stream) must be torn down.
func (s *session) transaction(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	s.txns++
	stx, _ := s.a.Tx.(transport.ServerTx)
	if s.txns > 1 && stx != nil {
		stx.NewTransaction()
	}
	s.reportRequest(r)
	if s.txns == 1 {
		s.sink.State(event.Connected, 0)
	}
	s.sink.State(event.ServerTxn, 0)
	if err := s.readBody(ctx, r); err != nil {
		return err
	}
	return s.respond(ctx, w, r, stx)
}

// readBody delivers the request body: SOM on the first chunk, then a
// zero-length chunk with EOM; nothing for an empty body.
func (s *session) readBody(ctx context.Context, r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	buf := make([]byte, rxChunk)
	flags := event.SOM
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			if rerr := s.sink.Rx(ctx, bytes.Clone(buf[:n]), flags); rerr != nil {
				return rerr
			}
			flags = 0
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: reading the request body: %w", ErrConnClosed, err)
		}
	}
	if flags == event.SOM {
		return nil // empty body
	}
	return s.sink.Rx(ctx, []byte{}, event.EOM)
}

// respond waits for the application's first response chunk, writes the
// status and headers, then the body chunks up to the one with EOM.
func (s *session) respond(ctx context.Context, w http.ResponseWriter, r *http.Request, stx transport.ServerTx) error {
	ch, err := s.a.Tx.Next(ctx)
	if err != nil {
		return fmt.Errorf("%w: waiting for the response: %w", ErrConnClosed, err)
	}
	var resp transport.Response
	if stx != nil {
		resp = stx.Response()
	}
	st := s.a.Type
	status := resp.Status
	if status == 0 {
		status = http.StatusNotFound // Respond was never called
	}
	if status < 200 || status > 999 {
		s.sink.Logger().Warn("httpserver: invalid response status, sending 500", "stream", s.a.StreamID, "status", status)
		status = http.StatusInternalServerError
	}
	h := w.Header()
	// Only the application's headers: keep net/http from sniffing a type.
	h["Content-Type"] = nil
	var bad error
	for i, item := range st.Metadata {
		if item.Header != "" && i < len(resp.Metadata) && resp.Metadata[i].Set {
			bad = cmp.Or(bad, checkResponseHeader(item.Name, item.Header, resp.Metadata[i].Value))
			addHeader(h, item.Header, resp.Metadata[i].Value)
		}
	}
	if st.DirectProtoStr && len(resp.Extra) > 0 {
		names := make([]string, 0, len(resp.Extra))
		for name := range resp.Extra {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if hn := strings.TrimSuffix(name, ":"); hn != "" {
				bad = cmp.Or(bad, checkResponseHeader(name, hn, resp.Extra[name]))
				addHeader(h, hn, resp.Extra[name])
			}
		}
	}
	if bad != nil {
		// SetMetadata refuses such values; this is the last line: no
		// application header goes out, the response is a 500.
		s.sink.Logger().Warn("httpserver: response header refused, sending 500", "stream", s.a.StreamID, "err", bad)
		clear(h)
		h["Content-Type"] = nil
		status = http.StatusInternalServerError
	}
	length := int64(-1)
	if ch.Flags&event.SOM != 0 {
		length = ch.Len
	}
	if !st.HTTPNoContentLength && length >= 0 && bodyAllowed(status) && r.Method != http.MethodHead {
		if _, ok := h["Content-Length"]; !ok {
			h["Content-Length"] = []string{strconv.FormatInt(length, 10)}
		}
	}
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	if st.HTTPNoContentLength {
		// Headers go out now, before net/http could count the body into a
		// Content-Length: h1 uses chunked encoding (or closes, for 1.0).
		_ = rc.Flush()
	}
	for {
		if len(ch.Data) > 0 {
			if _, err := w.Write(ch.Data); err != nil && !errors.Is(err, http.ErrBodyNotAllowed) {
				return fmt.Errorf("%w: writing the response: %w", ErrConnClosed, err)
			}
		}
		if ch.Flags&event.EOM != 0 {
			return nil
		}
		_ = rc.Flush()
		if ch, err = s.a.Tx.Next(ctx); err != nil {
			return fmt.Errorf("%w: waiting for the response body: %w", ErrConnClosed, err)
		}
	}
}

// addHeader adds a response header under the name as given (h1 writes it
// that way; h2 lower-cases it), except for the framing headers net/http must
// recognise, which are stored canonically.
func addHeader(h http.Header, name, value string) {
	switch c := http.CanonicalHeaderKey(name); c {
	case "Content-Length", "Transfer-Encoding", "Connection", "Trailer":
		name = c
	}
	h[name] = append(h[name], value)
}

// bodyAllowed reports whether a response with status may carry a body.
func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified && status >= 200
}
