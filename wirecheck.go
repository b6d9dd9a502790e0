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
//
//	type ValueError struct {
//		Item   string // the metadata item ("" for a device field, a token, the policy's own text)
//		Field  string // where the value was going: `header "x-trace"`, "http_url", "mqtt_topic", ...
//		Reason string // what was wrong, for example "LF (0x0a) at byte 3"
//	}
type ValueError = transport.ValueError
