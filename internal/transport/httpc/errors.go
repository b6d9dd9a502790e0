package httpc

import (
	"errors"
	"strconv"

	"github.com/securestreams/ss/internal/transport"
)

// Sentinel errors wrapped by Result.Err.
var (
	// ErrRedirect is wrapped when a redirect is refused or cannot be followed.
	ErrRedirect = errors.New("ss: http redirect")
	// ErrBodyLength is wrapped when the request body does not match its
	// announced Content-Length.
	ErrBodyLength = errors.New("ss: http request body length mismatch")
	// ErrSigV4 is wrapped when a SigV4 request cannot be signed (missing
	// headers, region, service or credentials); it is transport.ErrSigV4.
	ErrSigV4 = transport.ErrSigV4
	// ErrTimeout is wrapped when a response header or body time limit expires.
	ErrTimeout = errors.New("ss: http time limit")
	// ErrTooLarge is wrapped when a response exceeds a bound the library
	// keeps on what a peer can make it hold (MaxMultipartBody).
	ErrTooLarge = errors.New("ss: http response too large")
	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("ss: http protocol closed")
	// ErrUnsupported is wrapped for endpoint forms a protocol cannot use
	// (h3 over a unix socket or SOCKS5).
	ErrUnsupported = errors.New("ss: unsupported")
)

// StatusError is the response status that failed an attempt (503, 429) or
// a transaction (a status http_expect, or 2xx, does not accept: QOS_NACK_REMOTE
// then DISCONNECTED with it as Err). It is transport.StatusError (ss.StatusError).
type StatusError = transport.StatusError

type redirectError struct {
	code   int
	reason string
}

func (e *redirectError) Error() string {
	s := "ss: http redirect"
	if e.code != 0 {
		s += " (" + strconv.Itoa(e.code) + ")"
	}
	return s + ": " + e.reason
}

func (e *redirectError) Is(target error) bool { return target == ErrRedirect }
