package raw

import (
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// CheckMetadata is the raw check of a metadata value, run by the stream at
// Create and SetMetadata (registered in the root's protocols.go): raw
// streams put metadata on no wire except through the endpoint, so only a
// value substituted there is checked (docs/security-validation.md).
func CheckMetadata(st *policy.Streamtype, name, value string) error {
	return transport.CheckEndpointMetadata(st, name, value)
}
