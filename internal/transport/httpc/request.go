package httpc

import (
	"context"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// header is one request header, name as it will be written on h1.
type header struct {
	name, value string
	item        string // the metadata item the value came from, "" for none
}

// outRequest is one HTTP request as the policy describes it, independent of
// the HTTP version that carries it.
type outRequest struct {
	method string
	ep     *transport.Endpoint
	host   string // Host header / :authority
	// headers excludes Host and the body framing headers.
	headers []header
	body    *bodyPlan // nil: no body
}

// bodyPlan says how a request body is framed and where its bytes come from.
type bodyPlan struct {
	// length is the Content-Length to send, -1 for none (h1: chunked).
	length      int64
	contentType string
	src         bodySource
}

// scheme returns "https" or "http" for the endpoint.
func scheme(ep *transport.Endpoint) string {
	if ep.TLS {
		return "https"
	}
	return "http"
}

// requestURL is the URL of a request for net/http round trippers: the path
// is kept verbatim in Opaque (h2/h3 :path), the query in RawQuery.
func requestURL(ep *transport.Endpoint, host string) *url.URL {
	p, q, _ := strings.Cut(ep.Path, "?")
	u := &url.URL{Scheme: scheme(ep), Host: host, Opaque: p, RawQuery: q}
	if strings.Contains(ep.Path, "?") && q == "" {
		u.ForceQuery = true
	}
	return u
}

// cookieURL is the URL the cookie jar is consulted with.
func cookieURL(ep *transport.Endpoint, host string) *url.URL {
	p, _, _ := strings.Cut(ep.Path, "?")
	h := host
	if ep.Network == "tcp" {
		h = ep.Host
		if strings.IndexByte(h, ':') >= 0 {
			h = "[" + h + "]"
		}
	}
	return &url.URL{Scheme: scheme(ep), Host: h, Path: p}
}

// isBodyMethod reports whether method may carry a body (docs/streams.md §11.2.3).
func isBodyMethod(m string) bool {
	return strings.EqualFold(m, "POST") || strings.EqualFold(m, "PUT") || strings.EqualFold(m, "PATCH")
}

// isMultipart reports whether the streamtype's outgoing body is multipart.
func isMultipart(st *policy.Streamtype) bool {
	return st.HTTPMultipartName != "" || st.HTTPMultipartFilename != "" || st.HTTPMimeContentType != ""
}

// skipMapped reports whether a mapped metadata header is produced by the
// library itself and must not be copied from metadata.
func skipMapped(name string, hasFraming bool) bool {
	switch {
	case strings.HasPrefix(name, ":"):
		return true // a pseudo-header such as ":status" is response-only
	case strings.EqualFold(name, "content-length"), strings.EqualFold(name, "host"),
		strings.EqualFold(name, "transfer-encoding"), strings.EqualFold(name, "connection"):
		return true
	case hasFraming && strings.EqualFold(name, "content-type"):
		return true
	}
	return false
}

// mappedContentLength returns the value of a mapped content-length item, 0
// when none is set.
func mappedContentLength(a *transport.Attempt) int64 {
	for i, m := range a.Type.Metadata {
		if m.Header != "" && strings.EqualFold(m.Header, "content-length") && i < len(a.Metadata) && a.Metadata[i].Set {
			n, err := strconv.ParseInt(strings.TrimSpace(a.Metadata[i].Value), 10, 64)
			if err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

// buildHeaders assembles the policy-driven headers (§11.2.2) for one
// request: auth, device, mapped metadata, direct_proto_str, cookies and
// SigV4. Host and framing headers are added by the protocol writers.
func (r *run) buildHeaders(ctx context.Context, req *outRequest) error {
	a, st, env := r.a, r.a.Type, r.env
	hs := req.headers[:0]
	sigv4 := st.UseAuth != nil && st.UseAuth.Type == policy.AuthSigV4
	if st.HTTPAuthHeader != "" {
		slot := 0
		if st.UseAuth != nil && !sigv4 {
			slot = int(st.UseAuth.Blob)
		}
		tok := env.Token(slot)
		v := st.HTTPAuthPreamble
		if st.AuthHexify {
			v += hex.EncodeToString(tok)
		} else {
			v += string(tok)
		}
		hs = append(hs, header{name: trimColon(st.HTTPAuthHeader), value: v})
	}
	dev := env.CurrentDevice()
	if st.HTTPDSNHeader != "" {
		hs = append(hs, header{name: trimColon(st.HTTPDSNHeader), value: dev.Serial})
	}
	if st.HTTPFWVHeader != "" {
		hs = append(hs, header{name: trimColon(st.HTTPFWVHeader), value: dev.FirmwareVersion})
	}
	if st.HTTPDevtypeHeader != "" {
		hs = append(hs, header{name: trimColon(st.HTTPDevtypeHeader), value: dev.Type})
	}
	framing := req.body != nil && req.body.contentType != ""
	for i, m := range st.Metadata {
		if m.Header == "" || i >= len(a.Metadata) || !a.Metadata[i].Set || skipMapped(m.Header, framing) {
			continue
		}
		hs = append(hs, header{name: m.Header, value: a.Metadata[i].Value, item: m.Name})
	}
	if st.DirectProtoStr && len(a.Extra) > 0 {
		names := make([]string, 0, len(a.Extra))
		for k := range a.Extra {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			n := trimColon(k)
			if n == "" || skipMapped(n, framing) {
				continue
			}
			hs = append(hs, header{name: n, value: a.Extra[k], item: k})
		}
	}
	if st.HTTPCookies && env.Cookies != nil {
		cs := env.Cookies.Cookies(cookieURL(req.ep, req.host))
		if len(cs) > 0 {
			var b strings.Builder
			for i, c := range cs {
				if i > 0 {
					b.WriteString("; ")
				}
				b.WriteString(c.Name)
				b.WriteByte('=')
				b.WriteString(c.Value)
			}
			hs = append(hs, header{name: "Cookie", value: b.String()})
		}
	}
	req.headers = hs
	if sigv4 {
		return r.signV4(ctx, req)
	}
	return nil
}

func trimColon(s string) string {
	return strings.TrimSuffix(s, ":")
}

// storeCookies saves a response's Set-Cookie values for http_cookies streams.
func (r *run) storeCookies(req *outRequest, resp *http.Response) {
	if !r.a.Type.HTTPCookies || r.env.Cookies == nil {
		return
	}
	if cs := resp.Cookies(); len(cs) > 0 {
		r.env.Cookies.SetCookies(cookieURL(req.ep, req.host), cs)
	}
}

// noUserAgent is the User-Agent value that keeps the h2 and h3 round
// trippers from sending their default one; shared, never written.
var noUserAgent = []string{""}

// httpRequest converts req into a net/http request for the h2 and h3
// round trippers (no User-Agent, no Accept-Encoding).
func httpRequest(ctx context.Context, req *outRequest, failed *errBox, abort func(error)) *http.Request {
	h := make(http.Header, len(req.headers)+2)
	for _, x := range req.headers {
		k := strings.ToLower(x.name)
		h[k] = append(h[k], x.value)
	}
	h["User-Agent"] = noUserAgent
	// A value, not a pointer: WithContext copies it to the heap, so the
	// request costs one allocation rather than two.
	hr := http.Request{
		Method:     req.method,
		URL:        requestURL(req.ep, req.host),
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     h,
		Host:       req.host,
	}
	if b := req.body; b != nil {
		if b.contentType != "" {
			h["content-type"] = []string{b.contentType}
		}
		hr.ContentLength = b.length
		hr.Body = &bodyReader{src: b.src, failed: failed, abort: abort}
	}
	return hr.WithContext(ctx)
}

// endpointFromURL turns an absolute redirect target into an endpoint.
func endpointFromURL(u *url.URL) (*transport.Endpoint, error) {
	ep := &transport.Endpoint{Network: "tcp", Scheme: strings.ToLower(u.Scheme)}
	switch ep.Scheme {
	case "http":
		ep.Port = 80
	case "https":
		ep.Port, ep.TLS = 443, true
	default:
		return nil, &redirectError{reason: "unsupported scheme " + strconv.Quote(u.Scheme)}
	}
	ep.Host = u.Hostname()
	if ep.Host == "" {
		return nil, &redirectError{reason: "no host in Location"}
	}
	if ps := u.Port(); ps != "" {
		p, err := strconv.Atoi(ps)
		if err != nil || p < 1 || p > 65535 {
			return nil, &redirectError{reason: "bad port in Location"}
		}
		ep.Port = p
	}
	ep.Address = net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
	ep.ServerName = ep.Host
	ep.Path = transport.NormalizePath(u.RequestURI())
	return ep, nil
}
