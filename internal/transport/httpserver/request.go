package httpserver

import (
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// MetadataClearer is an optional interface of a transport.Sink: ClearMetadata
// makes a metadata value unset again. When a keep-alive request lacks a field
// the previous request had (an Authorization header, a query argument), the
// session clears it so the stream does not show the previous request's
// value; a sink without ClearMetadata gets SetMetadata(name, "") instead.
type MetadataClearer interface {
	ClearMetadata(name string)
}

// Names of the request fields of docs/streams.md §10.2; a query argument with one
// of these names never overrides them (the request line wins).
const (
	metaMethod = "method"
	metaPath   = "path"
	metaAuth   = "auth"
)

// requestFields returns the metadata values docs/streams.md §10.2 sets from r, for
// declared names only: method, path (without query), auth (Authorization,
// when present) and every declared name equal to a query argument name
// (first occurrence, percent-decoded).
func requestFields(st *policy.Streamtype, r *http.Request) map[string]string {
	vals := make(map[string]string)
	if st.MetadataIndex(metaMethod) >= 0 {
		vals[metaMethod] = r.Method
	}
	if st.MetadataIndex(metaPath) >= 0 {
		vals[metaPath] = r.URL.Path
	}
	if st.MetadataIndex(metaAuth) >= 0 {
		if v, ok := r.Header["Authorization"]; ok && len(v) > 0 {
			vals[metaAuth] = v[0]
		}
	}
	for _, arg := range strings.Split(r.URL.RawQuery, "&") {
		if arg == "" {
			continue
		}
		name, value, _ := strings.Cut(arg, "=")
		name = percentDecode(name)
		switch name {
		case metaMethod, metaPath, metaAuth:
			continue
		}
		if _, seen := vals[name]; seen || st.MetadataIndex(name) < 0 {
			continue
		}
		vals[name] = percentDecode(value)
	}
	return vals
}

// percentDecode decodes %XX escapes ('+' stays '+'); a malformed escape
// leaves the text as received.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	if d, err := url.PathUnescape(s); err == nil {
		return d
	}
	return s
}

// requestHeaders returns the request headers as direct_proto_str metadata:
// lower-case "name:" → first value, plus "host:".
func requestHeaders(r *http.Request) map[string]string {
	vals := make(map[string]string, len(r.Header)+1)
	for name, v := range r.Header {
		if len(v) > 0 {
			vals[strings.ToLower(name)+":"] = v[0]
		}
	}
	if r.Host != "" {
		vals["host:"] = r.Host
	}
	return vals
}

// reportRequest sets the request's metadata on the sink in declaration order
// (direct_proto_str headers after, sorted), and clears what the previous
// request on the connection set but this one does not.
func (s *session) reportRequest(r *http.Request) {
	st := s.a.Type
	sink := s.sink
	now := make(map[string]bool)
	fields := requestFields(st, r)
	for _, item := range st.Metadata {
		if v, ok := fields[item.Name]; ok {
			sink.SetMetadata(item.Name, v)
			now[item.Name] = true
		} else if s.prev[item.Name] {
			clearMetadata(sink, item.Name)
		}
	}
	if st.DirectProtoStr {
		hdrs := requestHeaders(r)
		names := make([]string, 0, len(hdrs))
		for name := range hdrs {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			sink.SetMetadata(name, hdrs[name])
			now[name] = true
		}
		gone := make([]string, 0)
		for name := range s.prev {
			if strings.HasSuffix(name, ":") && !now[name] {
				gone = append(gone, name)
			}
		}
		sort.Strings(gone)
		for _, name := range gone {
			clearMetadata(sink, name)
		}
	}
	s.prev = now
}

func clearMetadata(sink transport.Sink, name string) {
	if c, ok := sink.(MetadataClearer); ok {
		c.ClearMetadata(name)
		return
	}
	sink.SetMetadata(name, "")
}
