package httpserver

import (
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// CheckMetadata is the check of a metadata value an application sets on an
// accepted h1/h2 stream, run at SetMetadata (registered in the root's
// protocols.go): mapped items become response headers, so their values
// must be valid header values, and direct_proto_str "name:" names tokens
// (docs/security-validation.md).
func CheckMetadata(st *policy.Streamtype, name, value string) error {
	return transport.CheckHTTPMetadata(st, name, value)
}

// checkResponseHeader checks one response header set from metadata item.
func checkResponseHeader(item, name, value string) error {
	if err := transport.CheckHeaderName(name); err != nil {
		return transport.WithItem(err, item)
	}
	return transport.WithItem(transport.CheckHeaderValue(name, value), item)
}
