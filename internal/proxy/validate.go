package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"
)

// ErrName is wrapped when a proxy client sends a streamtype or metadata
// name that is not printable UTF-8 text (docs/security-validation.md).
var ErrName = errors.New("ss: proxy: name refused")

// CheckName refuses a streamtype or metadata name from a proxy client that
// is empty, not valid UTF-8, or holds a control character (C0, DEL).
// Metadata values are checked by the onward stream's SetMetadata with the
// same per-protocol rules as a local stream.
func CheckName(what, name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty %s name", ErrName, what)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %s name %q is not valid UTF-8", ErrName, what, name)
	}
	for i := 0; i < len(name); i++ {
		if b := name[i]; b < 0x20 || b == 0x7f {
			return fmt.Errorf("%w: %s name %q: control character 0x%02x at byte %d", ErrName, what, name, b, i)
		}
	}
	return nil
}

// badStreamtype answers a STREAMTYPE whose name CheckName refuses with
// CREATE_RESULT failed and closes the link; it reports whether it did.
func (l *link) badStreamtype(name string) bool {
	err := CheckName("streamtype", name)
	if err == nil {
		return false
	}
	b, _ := (&CreateResult{Result: ResultFailed}).AppendBinary(nil)
	l.conn.Write(b)
	l.closeAt(slog.LevelInfo, "streamtype name refused", err)
	return true
}
