package httpc

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzH1Response feeds arbitrary bytes to the HTTP/1 response reader the h1
// client uses (heads until the final one, then the body, Retry-After and
// the multipart boundary of the Content-Type): it must never panic, skip at
// most maxInformational 1xx heads, and never report a negative Retry-After.
func FuzzH1Response(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"HTTP/1.1 503 Busy\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 429 Slow\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\nDate: Wed, 21 Oct 2015 07:27:00 GMT\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: multipart/form-data; boundary=xyz\r\n\r\n--xyz\r\n\r\na\r\n--xyz--",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
		"HTTP/1.0 302 Found\r\nLocation: http://[::1]:80/x\r\n\r\n",
		strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 20) + "HTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		resp, err := readH1Response(br, &http.Request{Method: http.MethodGet})
		if err != nil {
			if resp != nil {
				t.Fatal("response with an error")
			}
			return
		}
		if resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("final status %d", resp.StatusCode)
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if d := retryAfter(resp.Header, time.Now()); d < 0 {
			t.Fatalf("Retry-After %v", d)
		}
		multipartBoundary(resp.Header.Get("Content-Type"))
		_ = resp.Cookies()
		if loc := resp.Header.Get("Location"); loc != "" {
			if u, err := resp.Location(); err == nil {
				endpointFromURL(u)
			}
		}
	})
}

// FuzzSplitMultipart: the multipart splitter never panics, its parts are
// pieces of the body (together no longer than it), and no part contains
// the delimiter that ends it.
func FuzzSplitMultipart(f *testing.F) {
	f.Add([]byte("--b\r\nH: v\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\n"), "b")
	f.Add([]byte("preamble\r\n--b  \r\n\r\nx\r\n--b--"), "b")
	f.Add([]byte("--b\r\n\r\nunterminated"), "b")
	f.Add([]byte("--\r\n\r\n--\r\n--"), "")
	f.Add([]byte("--b--"), "b")
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		parts := splitMultipart(body, boundary)
		n := 0
		next := []byte("\r\n--" + boundary)
		for _, p := range parts {
			n += len(p)
			if bytes.Contains(p, next) {
				t.Fatalf("part %q contains the delimiter %q", p, next)
			}
			if !bytes.Contains(body, p) {
				t.Fatalf("part %q is not in the body", p)
			}
		}
		if n > len(body) {
			t.Fatalf("parts hold %d bytes, the body %d", n, len(body))
		}
	})
}
