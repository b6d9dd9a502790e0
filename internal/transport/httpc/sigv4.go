package httpc

import (
	"context"

	"github.com/securestreams/ss/internal/transport"
)

// amzDateFormat is the x-amz-date layout.
const amzDateFormat = transport.AMZDateFormat

// signV4 adds the SigV4 Authorization header (docs/streams.md §11.2.9) computed
// by transport.SignV4.
func (r *run) signV4(ctx context.Context, req *outRequest) error {
	auth, tok, err := transport.SignV4(ctx, r.a, req.method, scheme(req.ep), req.host, req.ep.Path)
	if err != nil {
		return err
	}
	if tok != "" {
		req.headers = append(req.headers, header{name: "x-amz-security-token", value: tok})
	}
	req.headers = append(req.headers, header{name: "Authorization", value: auth})
	return nil
}
