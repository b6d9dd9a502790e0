package transport

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrWireValue is wrapped by every refusal of a value that cannot be put on
// a wire safely (docs/security-validation.md): a CR, LF, NUL or other
// control character, a byte that is not a token character in a header name
// or method, a wildcard in an MQTT publish topic, invalid UTF-8 where the
// protocol needs text, or a value over the protocol's length limit.
var ErrWireValue = errors.New("ss: value refused for the wire")

// ValueError names the value that was refused, where it was going and why.
// It wraps ErrWireValue.
type ValueError struct {
	// Item is the metadata item the value belongs to ("" when the value is
	// not metadata: a device field, a token, the policy's own text).
	Item string
	// Field is where the value was going, for example `header "x-trace"`,
	// "http_url", "mqtt_topic", "request target", "method".
	Field string
	// Reason says what was wrong, for example "LF (0x0a) at byte 3".
	Reason string
}

func (e *ValueError) Error() string {
	s := "ss: "
	if e.Item != "" {
		s += "metadata " + strconv.Quote(e.Item) + ": value"
	} else {
		s += "value"
	}
	return s + " refused for " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrWireValue.
func (e *ValueError) Unwrap() error { return ErrWireValue }

// WithItem returns err with Item set to item when err is a *ValueError
// without one; other errors are returned unchanged.
func WithItem(err error, item string) error {
	var ve *ValueError
	if errors.As(err, &ve) && ve.Item == "" {
		c := *ve
		c.Item = item
		return &c
	}
	return err
}

// describeByte names byte b found at offset i of a refused value.
func describeByte(s string, i int) string {
	b := s[i]
	var name string
	switch b {
	case '\r':
		name = "CR (0x0d)"
	case '\n':
		name = "LF (0x0a)"
	case 0:
		name = "NUL (0x00)"
	case '\t':
		name = "TAB (0x09)"
	case ' ':
		name = "space (0x20)"
	case 0x7f:
		name = "DEL (0x7f)"
	default:
		switch {
		case b < 0x20:
			name = "control character 0x" + strconv.FormatUint(uint64(b), 16)
		case b >= 0x80:
			name = "non-ASCII byte 0x" + strconv.FormatUint(uint64(b), 16)
		default:
			name = strconv.QuoteRune(rune(b))
		}
	}
	return name + " at byte " + strconv.Itoa(i)
}

// isTokenByte reports whether b is an RFC 9110 tchar.
func isTokenByte(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// checkToken refuses an empty s or one with a byte that is not a tchar.
func checkToken(s, field string) error {
	if s == "" {
		return &ValueError{Field: field, Reason: "empty"}
	}
	for i := 0; i < len(s); i++ {
		if !isTokenByte(s[i]) {
			return &ValueError{Field: field, Reason: describeByte(s, i) + " (only RFC 9110 token characters are allowed)"}
		}
	}
	return nil
}

// CheckHeaderName refuses a header name that is empty or has a byte that is
// not an RFC 9110 token character (space, ':', CR, LF, NUL, ...).
func CheckHeaderName(name string) error {
	return checkToken(name, "header name "+strconv.Quote(name))
}

// CheckMethod refuses an HTTP method that is not an RFC 9110 token.
func CheckMethod(method string) error {
	return checkToken(method, "method")
}

// CheckHeaderValue refuses a header value containing a control character
// other than horizontal tab (CR, LF and NUL included) or DEL. Nothing is
// stripped or replaced: the whole value is refused.
func CheckHeaderValue(name, value string) error {
	for i := 0; i < len(value); i++ {
		if b := value[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			return &ValueError{Field: "header " + strconv.Quote(name), Reason: describeByte(value, i)}
		}
	}
	return nil
}

// CheckRequestTarget refuses an origin-form request target ("/path?query")
// that does not start with '/' or has a byte outside the printable ASCII
// range (controls, space, DEL, non-ASCII) or a '#'.
func CheckRequestTarget(target string) error {
	if !strings.HasPrefix(target, "/") {
		return &ValueError{Field: "request target", Reason: "does not start with '/'"}
	}
	for i := 0; i < len(target); i++ {
		if b := target[i]; b <= 0x20 || b >= 0x7f || b == '#' {
			return &ValueError{Field: "request target", Reason: describeByte(target, i)}
		}
	}
	return nil
}

// CheckHost refuses a host name or address that could not be written as the
// host of a Host header or :authority as is: empty, or with a byte other
// than letters, digits, "-._~" and, for IPv6 literals and their zones, ':'
// and '%'.
func CheckHost(host string) error {
	if host == "" {
		return &ValueError{Field: "host", Reason: "empty"}
	}
	for i := 0; i < len(host); i++ {
		b := host[i]
		if isUnreserved(b) || b == ':' || b == '%' {
			continue
		}
		return &ValueError{Field: "host", Reason: describeByte(host, i)}
	}
	return nil
}

// isUnreserved reports whether b is an RFC 3986 unreserved character.
func isUnreserved(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return b == '-' || b == '.' || b == '_' || b == '~'
}

// EscapeURLValue percent-encodes every byte of v that is not an RFC 3986
// unreserved character (ALPHA, DIGIT, "-", ".", "_", "~"), so the value is
// one opaque path segment or query component: '/', '?', '#', '&', '=',
// '%', space, controls and non-ASCII bytes all become %XX.
func EscapeURLValue(v string) string {
	n := 0
	for i := 0; i < len(v); i++ {
		if !isUnreserved(v[i]) {
			n++
		}
	}
	if n == 0 {
		return v
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(v)+2*n)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isUnreserved(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return string(b)
}

// CheckPreEncoded refuses a value of a url_preencoded metadata item that is
// not already a valid piece of an RFC 3986 path or query: only unreserved
// characters, sub-delims, ':', '@', '/', '?' and complete %XX escapes may
// appear (never '#', space, controls or non-ASCII bytes).
func CheckPreEncoded(v string) error {
	for i := 0; i < len(v); i++ {
		b := v[i]
		switch {
		case isUnreserved(b), strings.IndexByte("!$&'()*+,;=:@/?", b) >= 0:
			continue
		case b == '%':
			if i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]) {
				i += 2
				continue
			}
			return &ValueError{Field: "url (pre-encoded)", Reason: "'%' at byte " + strconv.Itoa(i) + " does not start a %XX escape"}
		}
		return &ValueError{Field: "url (pre-encoded)", Reason: describeByte(v, i)}
	}
	return nil
}

func isHex(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F'
}

// checkNoControls refuses a value with a control character, space or DEL
// (values substituted into an endpoint).
func checkNoControls(v, field string) error {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b <= 0x20 || b == 0x7f {
			return &ValueError{Field: field, Reason: describeByte(v, i)}
		}
	}
	return nil
}

// CheckUTF8Text refuses a value that is not valid UTF-8 or contains NUL
// (MQTT strings, MQTT 3.1.1 §1.5.3), or is longer than max bytes.
func CheckUTF8Text(v, field string, max int) error {
	if len(v) > max {
		return &ValueError{Field: field, Reason: strconv.Itoa(len(v)) + " bytes, the limit is " + strconv.Itoa(max)}
	}
	if i := strings.IndexByte(v, 0); i >= 0 {
		return &ValueError{Field: field, Reason: describeByte(v, i)}
	}
	if !utf8.ValidString(v) {
		for i := 0; i < len(v); {
			r, n := utf8.DecodeRuneInString(v[i:])
			if r == utf8.RuneError && n <= 1 {
				return &ValueError{Field: field, Reason: "invalid UTF-8 at byte " + strconv.Itoa(i)}
			}
			i += n
		}
	}
	return nil
}
