package ss

import "github.com/securestreams/ss/internal/transport"

// ErrWireValue is wrapped by every refusal of a value that cannot be put on
// a wire safely: a metadata value with CR, LF, NUL or another control
// character bound for a header, a header name that is not a token, an MQTT
// topic value with a wildcard or invalid UTF-8, and so on
// (docs/security-validation.md). Create and SetMetadata return it for
// values the application sets; an attempt fails with it for values that
// only become bad on the wire.
var ErrWireValue = transport.ErrWireValue

// ValueError names the refused value's metadata item, where it was going
// and why; it wraps ErrWireValue.
type ValueError = transport.ValueError
