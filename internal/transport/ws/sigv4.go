package ws

import (
	"context"
	"net/http"

	"github.com/securestreams/ss/internal/transport"
)

// ErrSigV4 is wrapped when the handshake cannot be signed (it is
// transport.ErrSigV4).
var ErrSigV4 = transport.ErrSigV4

// signV4 adds the SigV4 Authorization (and session token) headers for the
// handshake GET (docs/streams.md §11.2.9), with transport.SignV4.
func signV4(ctx context.Context, a *transport.Attempt, ep *transport.Endpoint, host string, h http.Header) error {
	scheme := "http"
	if ep.TLS {
		scheme = "https"
	}
	auth, tok, err := transport.SignV4(ctx, a, http.MethodGet, scheme, host, ep.Path)
	if err != nil {
		return err
	}
	if tok != "" {
		h["x-amz-security-token"] = []string{tok}
	}
	h["Authorization"] = []string{auth}
	return nil
}
