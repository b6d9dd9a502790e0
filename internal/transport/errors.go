package transport

import (
	"crypto/tls"
	"errors"
	"net/http"
	"strconv"
)

// StatusError is an HTTP status that failed a transaction or a connection
// attempt (a status the streamtype does not accept, a refused ws upgrade, a
// 503 answered with Retry-After). The root package re-exports it as
// ss.StatusError; errors.As finds it in Event.Err.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Status is the status line's text as received ("503 Service
	// Unavailable"), or "" when the transport did not see one.
	Status string
}

func (e *StatusError) Error() string {
	s := e.Status
	if s == "" {
		s = strconv.Itoa(e.Code)
		if t := http.StatusText(e.Code); t != "" {
			s += " " + t
		}
	}
	return "ss: HTTP status " + s
}

// peerSubject names the certificate a failed TLS verification was about
// (" (certificate CN=..., issued by CN=...)"), "" for other errors.
func peerSubject(err error) string {
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) || len(cve.UnverifiedCertificates) == 0 {
		return ""
	}
	c := cve.UnverifiedCertificates[0]
	return " (certificate " + strconv.Quote(c.Subject.String()) + ", issued by " + strconv.Quote(c.Issuer.String()) + ")"
}

// ConnackError is an MQTT broker's refusal of a connection: the CONNACK
// return code (MQTT 3.1.1 §3.2.2.3: 1 unacceptable protocol version, 2
// identifier rejected, 3 server unavailable, 4 bad user name or password, 5
// not authorized). The root package re-exports it as ss.ConnackError.
type ConnackError struct {
	Code byte
}

var connackText = [...]string{
	1: "unacceptable protocol version",
	2: "identifier rejected",
	3: "server unavailable",
	4: "bad user name or password",
	5: "not authorized",
}

func (e *ConnackError) Error() string {
	s := "ss: MQTT CONNACK refused the connection: code " + strconv.Itoa(int(e.Code))
	if int(e.Code) < len(connackText) && connackText[e.Code] != "" {
		s += " (" + connackText[e.Code] + ")"
	}
	return s
}
