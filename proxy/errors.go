package proxy

import (
	"errors"

	"github.com/securestreams/ss/internal/event"
)

// Causes a proxied stream reports in Event.Err (docs/errors.md).
var (
	// ErrLinkLost is wrapped by the Err of a proxied stream's DISCONNECTED
	// (and UPSTREAM_LINK_RETRY) when the link to the proxy ended or could
	// not be opened; the underlying network error is wrapped too.
	ErrLinkLost = errors.New("ss: proxy link lost")
	// ErrReported is wrapped by *ReportedError.
	ErrReported = errors.New("ss: state reported by the proxy")
)

// ReportedError is the Err of an UNREACHABLE, DISCONNECTED, AUTH_FAILED,
// TIMEOUT or ALL_RETRIES_FAILED that the proxy reported in a CONNSTATE.
// SSSv1 carries no cause (an lws peer refuses a longer CONNSTATE), so the
// underlying error stays in the proxy's log.
type ReportedError struct {
	State event.State // the reported state (an ss.State: ss.Unreachable, ...)
}

func (e *ReportedError) Error() string {
	return "ss: proxy reported " + e.State.String() + " (SSSv1 carries no cause: see the proxy's log)"
}

// Unwrap returns ErrReported.
func (e *ReportedError) Unwrap() error { return ErrReported }
