package ws

import (
	"net/http"
	"strings"

	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// CheckMetadata is the ws client check of a metadata value, run by the
// stream at Create and SetMetadata (registered in the root's protocols.go):
// the handshake follows the HTTP rules (transport.CheckHTTPMetadata).
func CheckMetadata(st *policy.Streamtype, name, value string) error {
	return transport.CheckHTTPMetadata(st, name, value)
}

// checkHandshake checks every value of the handshake request before it is
// dialed: the request target, header names (tokens) and values (no CR, LF,
// NUL or other control character). net/http would replace CR and LF in a
// value by spaces; a refusal is the rule here (docs/security-validation.md).
func checkHandshake(st *policy.Streamtype, path string, hdr http.Header) error {
	if err := transport.CheckRequestTarget(path); err != nil {
		return err
	}
	for name, vs := range hdr {
		item := headerItem(st, name)
		if err := transport.CheckHeaderName(name); err != nil {
			return transport.WithItem(err, item)
		}
		for _, v := range vs {
			if err := transport.CheckHeaderValue(name, v); err != nil {
				return transport.WithItem(err, item)
			}
		}
	}
	return nil
}

// headerItem returns the metadata item mapped to header name, "" for none.
func headerItem(st *policy.Streamtype, name string) string {
	for _, m := range st.Metadata {
		if m.Header != "" && strings.EqualFold(m.Header, name) {
			return m.Name
		}
	}
	return ""
}
