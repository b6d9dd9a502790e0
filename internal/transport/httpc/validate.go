package httpc

import (
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// validate checks every value of req that reaches the wire before a byte
// is written, whatever the HTTP version (docs/security-validation.md): the
// method and header names are tokens, the request target and Host are
// printable ASCII with no space or '#', and no header value holds CR, LF,
// NUL or another control character. A refused header from metadata names
// its item.
func (req *outRequest) validate() error {
	if err := transport.CheckMethod(req.method); err != nil {
		return err
	}
	if err := transport.CheckRequestTarget(req.ep.Path); err != nil {
		return err
	}
	if err := transport.CheckHeaderValue("host", req.host); err != nil {
		return err
	}
	for _, h := range req.headers {
		if err := transport.CheckHeaderName(h.name); err != nil {
			return transport.WithItem(err, h.item)
		}
		if err := transport.CheckHeaderValue(h.name, h.value); err != nil {
			return transport.WithItem(err, h.item)
		}
	}
	if req.body != nil {
		return transport.CheckHeaderValue("content-type", req.body.contentType)
	}
	return nil
}

// CheckMetadata is the h1/h2/h3 client check of a metadata value, run by the
// stream at Create and SetMetadata (registered in the root's protocols.go):
// a header-mapped item's value must be a valid header value, a
// direct_proto_str "name:" must be a token and its value a header value,
// and a value substituted into endpoint or http_url must be usable there
// (docs/security-validation.md).
func CheckMetadata(st *policy.Streamtype, name, value string) error {
	return transport.CheckHTTPMetadata(st, name, value)
}
