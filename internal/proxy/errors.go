package proxy

import (
	"errors"
	"strconv"
)

// Error classes of malformed frames. A *FrameError wraps exactly one of them;
// test with errors.Is.
var (
	// ErrUnknownCode: the code is not an SSSv1 message code.
	ErrUnknownCode = errors.New("ss: proxy: unknown message code")
	// ErrWrongDirection: the code is only valid in the other direction.
	ErrWrongDirection = errors.New("ss: proxy: message code not valid in this direction")
	// ErrReserved: the code is reserved and never sent (0x5A, 0xB2, 0xB3).
	ErrReserved = errors.New("ss: proxy: reserved message code")
	// ErrLength: the body length L does not fit the message's layout.
	ErrLength = errors.New("ss: proxy: bad frame length")
	// ErrTooLarge: a length exceeds a configured Limits value or a format
	// limit.
	ErrTooLarge = errors.New("ss: proxy: frame exceeds limit")
	// ErrVersion: STREAMTYPE carries a protocol version other than 1.
	ErrVersion = errors.New("ss: proxy: unsupported protocol version")
	// ErrField: a field inside the body is out of range (a name length, a
	// rideshare length, a missing rideshare name).
	ErrField = errors.New("ss: proxy: bad field")
	// ErrTruncated: the stream ended inside a frame.
	ErrTruncated = errors.New("ss: proxy: truncated frame")
)

// FrameError describes a malformed frame, or a message that cannot be
// encoded.
type FrameError struct {
	// Dir is the direction being decoded (0 when encoding).
	Dir Direction
	// Code is the offending frame's message code.
	Code Code
	// Offset is the stream offset of the frame's first byte (for Parse, the
	// offset in the given slice); -1 when encoding.
	Offset int64
	// Field is the offset within the frame of the offending byte(s), or -1
	// when the whole frame is concerned.
	Field int
	// Reason says what was expected and what was found.
	Reason string
	// Err is the error class: one of the Err… sentinels.
	Err error
}

// Error implements error.
func (e *FrameError) Error() string {
	s := "ss: proxy: "
	if e.Offset < 0 {
		s += "encode "
	} else if e.Dir != 0 {
		s += e.Dir.String() + " "
	}
	s += e.Code.String()
	if e.Offset >= 0 {
		s += " frame at offset " + strconv.FormatInt(e.Offset, 10)
	}
	if e.Field >= 0 {
		s += " (byte " + strconv.Itoa(e.Field) + ")"
	}
	return s + ": " + e.Reason
}

// Unwrap returns the error class.
func (e *FrameError) Unwrap() error { return e.Err }

func encodeError(c Code, class error, reason string) error {
	return &FrameError{Code: c, Offset: -1, Field: -1, Reason: reason, Err: class}
}
