package transport

import (
	"strings"

	"github.com/securestreams/ss/policy"
)

// CheckHTTPMetadata checks a metadata value of an HTTP or ws client
// streamtype (or the response headers of an HTTP server streamtype): the
// value of a header-mapped item must be a valid header value; on
// direct_proto_str streamtypes an undeclared "name:" must be a token and its
// value a header value; a SigV4 region or service must have no control
// characters; and a value substituted into endpoint or http_url must be
// usable there (CheckURLItem). Errors are *ValueError naming the item.
func CheckHTTPMetadata(st *policy.Streamtype, name, value string) error {
	i := st.MetadataIndex(name)
	if i < 0 {
		if st.DirectProtoStr && strings.HasSuffix(name, ":") {
			hn := strings.TrimSuffix(name, ":")
			if err := CheckHeaderName(hn); err != nil {
				return WithItem(err, name)
			}
			return WithItem(CheckHeaderValue(hn, value), name)
		}
		return nil // undeclared: the stream reports it
	}
	item := st.Metadata[i]
	if item.Header != "" {
		if err := CheckHeaderValue(item.Header, value); err != nil {
			return WithItem(err, name)
		}
	}
	if name == st.AWSRegion || name == st.AWSService {
		if err := checkNoControls(value, "sigv4 credential scope"); err != nil {
			return WithItem(err, name)
		}
	}
	return CheckEndpointMetadata(st, name, value)
}

// CheckEndpointMetadata checks a value substituted into the streamtype's
// endpoint or http_url (every protocol has an endpoint).
func CheckEndpointMetadata(st *policy.Streamtype, name, value string) error {
	i := st.MetadataIndex(name)
	if i < 0 {
		return nil
	}
	return CheckURLItem(st, i, value)
}
