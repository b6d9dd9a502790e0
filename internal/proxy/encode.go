package proxy

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// Encoding: every AppendBinary appends one whole frame and does not allocate
// when b has the capacity for it. On error nothing is appended.

// Append appends the frames of msgs to b, in order, for one batched write.
// On error it returns b unchanged and the first message's error.
func Append(b []byte, msgs ...Message) ([]byte, error) {
	out := b
	for _, m := range msgs {
		var err error
		if out, err = m.AppendBinary(out); err != nil {
			return b, err
		}
	}
	return out, nil
}

func appendHeader(b []byte, c Code, l int) []byte {
	return append(b, byte(c), byte(l>>8), byte(l))
}

// AppendBinary appends the STREAMTYPE frame. Name must be 1..31 bytes.
func (m *StreamType) AppendBinary(b []byte) ([]byte, error) {
	n := len(m.Name)
	if n < 1 || n > MaxStreamTypeName {
		return b, encodeError(CodeStreamType, ErrField,
			"streamtype name must be 1.."+strconv.Itoa(MaxStreamTypeName)+" bytes, have "+strconv.Itoa(n))
	}
	b = appendHeader(b, CodeStreamType, 9+n)
	b = append(b, Version)
	b = binary.BigEndian.AppendUint32(b, m.PID)
	b = binary.BigEndian.AppendUint32(b, uint32(m.Credit))
	return append(b, m.Name...), nil
}

// AppendBinary appends AB 00 00.
func (*OnwardConnect) AppendBinary(b []byte) ([]byte, error) {
	return appendHeader(b, CodeOnwardConnect, 0), nil
}

// AppendBinary appends AC 00 00. Neither lws nor this library's clients send
// it (W6, W17); it exists for tests and completeness.
func (*Destroying) AppendBinary(b []byte) ([]byte, error) {
	return appendHeader(b, CodeDestroying, 0), nil
}

// payloadBodyLen checks a payload frame's variable parts and returns its L.
func payloadBodyLen(c Code, rideshare string, n int) (int, error) {
	l := PayloadHeaderLen + n
	if r := len(rideshare); r > 0 {
		if r > MaxRideshareName {
			return 0, encodeError(c, ErrField,
				"rideshare name must be 1.."+strconv.Itoa(MaxRideshareName)+" bytes, have "+strconv.Itoa(r))
		}
		l += 1 + r
	}
	if l > MaxBody {
		return 0, encodeError(c, ErrTooLarge,
			"body of "+strconv.Itoa(l)+" bytes exceeds "+strconv.Itoa(MaxBody))
	}
	return l, nil
}

func appendPayloadHeader(b []byte, c Code, l int, flags uint32, us32 uint32, us64 uint64, rideshare string) []byte {
	b = appendHeader(b, c, l)
	b = binary.BigEndian.AppendUint32(b, flags)
	b = binary.BigEndian.AppendUint32(b, us32)
	b = binary.BigEndian.AppendUint64(b, us64)
	if rideshare != "" {
		b = append(b, byte(len(rideshare)))
		b = append(b, rideshare...)
	}
	return b
}

func wireFlags(f uint32, rideshare string) uint32 {
	f &= uint32(WireFlags &^ rideshareBit)
	if rideshare != "" {
		f |= uint32(rideshareBit)
	}
	return f
}

const rideshareBit = 0x20 // event.RideshareFlag

// AppendBinary appends the TX_PAYLOAD frame, payload included.
func (m *TxPayload) AppendBinary(b []byte) ([]byte, error) {
	b2, err := m.AppendHeader(b)
	if err != nil {
		return b, err
	}
	return append(b2, m.Payload...), nil
}

// AppendHeader appends the TX_PAYLOAD frame up to, not including, the
// payload; the caller writes the len(m.Payload) payload bytes right after.
func (m *TxPayload) AppendHeader(b []byte) ([]byte, error) {
	l, err := payloadBodyLen(CodeTxPayload, m.Rideshare, len(m.Payload))
	if err != nil {
		return b, err
	}
	return appendPayloadHeader(b, CodeTxPayload, l, wireFlags(uint32(m.Flags), m.Rideshare),
		m.DelayUS, m.TimeUS, m.Rideshare), nil
}

// AppendBinary appends the RX_PAYLOAD frame, payload included.
func (m *RxPayload) AppendBinary(b []byte) ([]byte, error) {
	b2, err := m.AppendHeader(b)
	if err != nil {
		return b, err
	}
	return append(b2, m.Payload...), nil
}

// AppendHeader appends the RX_PAYLOAD frame up to, not including, the
// payload; the caller writes the len(m.Payload) payload bytes right after.
func (m *RxPayload) AppendHeader(b []byte) ([]byte, error) {
	l, err := payloadBodyLen(CodeRxPayload, m.Rideshare, len(m.Payload))
	if err != nil {
		return b, err
	}
	return appendPayloadHeader(b, CodeRxPayload, l, wireFlags(uint32(m.Flags), m.Rideshare),
		0, m.TimeUS, m.Rideshare), nil
}

func appendMetadata(b []byte, c Code, name string, value []byte, maxFrame int) ([]byte, error) {
	k := len(name)
	if k < 1 || k > MaxMetadataName {
		return b, encodeError(c, ErrField,
			"metadata name must be 1.."+strconv.Itoa(MaxMetadataName)+" bytes, have "+strconv.Itoa(k))
	}
	if len(value) == 0 {
		return b, encodeError(c, ErrField, "empty metadata value (lws peers close the link on it)")
	}
	l := 1 + k + len(value)
	if 3+l > maxFrame {
		return b, encodeError(c, ErrTooLarge,
			"metadata frame of "+strconv.Itoa(3+l)+" bytes exceeds "+strconv.Itoa(maxFrame))
	}
	b = appendHeader(b, c, l)
	b = append(b, byte(k))
	b = append(b, name...)
	return append(b, value...), nil
}

// AppendBinary appends the client → proxy METADATA frame. Name must be 1..30
// bytes and Value not empty.
func (m *TxMetadata) AppendBinary(b []byte) ([]byte, error) {
	return appendMetadata(b, CodeTxMetadata, m.Name, m.Value, MaxFrame)
}

// AppendBinary appends the proxy → client METADATA frame. Name must be 1..30
// bytes, Value not empty and the whole frame, 4+k+v bytes, at most
// MaxProxyMetadataFrame (§4.4).
func (m *RxMetadata) AppendBinary(b []byte) ([]byte, error) {
	return appendMetadata(b, CodeRxMetadata, m.Name, m.Value, MaxProxyMetadataFrame)
}

func appendU32Frame(b []byte, c Code, v uint32) []byte {
	b = appendHeader(b, c, 4)
	return binary.BigEndian.AppendUint32(b, v)
}

// AppendBinary appends AF 00 04 and the delta.
func (m *TxCredit) AppendBinary(b []byte) ([]byte, error) {
	return appendU32Frame(b, CodeTxCredit, uint32(m.Delta)), nil
}

// AppendBinary appends 58 00 04 and the delta (never 0xAF, W7).
func (m *RxCredit) AppendBinary(b []byte) ([]byte, error) {
	return appendU32Frame(b, CodeRxCredit, uint32(m.Delta)), nil
}

// AppendBinary appends B0 00 04 and the timeout.
func (m *TimeoutUpdate) AppendBinary(b []byte) ([]byte, error) {
	return appendU32Frame(b, CodeTimeoutUpdate, m.Millis), nil
}

// AppendBinary appends B1 00 04 and the length.
func (m *PayloadLengthHint) AppendBinary(b []byte) ([]byte, error) {
	return appendU32Frame(b, CodePayloadLengthHint, m.Length), nil
}

// AppendBinary appends the CREATE_RESULT frame. A failed result is always the
// 8-byte frame (client_buflen as given, normally 0) and must have no
// Rideshares. A successful one writes each name preceded by a comma (W1);
// names must be non-empty, contain no comma, be at most MaxRideshares, and
// the list must stay within MaxRideshareList bytes (W14; see FitRideshares).
func (m *CreateResult) AppendBinary(b []byte) ([]byte, error) {
	if m.Result != ResultOK {
		if len(m.Rideshares) != 0 {
			return b, encodeError(CodeCreateResult, ErrField, "a failed result carries no rideshare list")
		}
		b = appendHeader(b, CodeCreateResult, 5)
		b = append(b, m.Result)
		return binary.BigEndian.AppendUint32(b, m.ClientBuflen), nil
	}
	if len(m.Rideshares) > MaxRideshares {
		return b, encodeError(CodeCreateResult, ErrTooLarge,
			"rideshare list of "+strconv.Itoa(len(m.Rideshares))+" names exceeds "+strconv.Itoa(MaxRideshares))
	}
	list := 0
	for _, n := range m.Rideshares {
		if n == "" || strings.IndexByte(n, ',') >= 0 {
			return b, encodeError(CodeCreateResult, ErrField, "rideshare name "+strconv.Quote(n)+" is empty or has a comma")
		}
		list += 1 + len(n)
	}
	if list > MaxRideshareList {
		return b, encodeError(CodeCreateResult, ErrTooLarge,
			"rideshare list of "+strconv.Itoa(list)+" bytes exceeds "+strconv.Itoa(MaxRideshareList))
	}
	b = appendHeader(b, CodeCreateResult, 5+list)
	b = append(b, ResultOK)
	b = binary.BigEndian.AppendUint32(b, m.ClientBuflen)
	for _, n := range m.Rideshares {
		b = append(b, ',')
		b = append(b, n...)
	}
	return b, nil
}

// FitRideshares returns the longest prefix of names that a CREATE_RESULT can
// carry to lws clients (at most MaxRideshares names, list within
// MaxRideshareList bytes) and the names left out, for the proxy to log.
// Empty names and names with a comma are left out too.
func FitRideshares(names []string) (fit, dropped []string) {
	list := 0
	for i, n := range names {
		if n == "" || strings.IndexByte(n, ',') >= 0 || len(fit) == MaxRideshares ||
			list+1+len(n) > MaxRideshareList {
			dropped = append(dropped, names[i])
			continue
		}
		list += 1 + len(n)
		fit = append(fit, n)
	}
	return fit, dropped
}

// AppendBinary appends the CONNSTATE frame: 57 00 05 SS and the ack for
// states below 256, 57 00 08 SS SS SS SS and the ack otherwise.
func (m *ConnState) AppendBinary(b []byte) ([]byte, error) {
	if m.State < 256 {
		b = appendHeader(b, CodeConnState, 5)
		b = append(b, byte(m.State))
	} else {
		b = appendHeader(b, CodeConnState, 8)
		b = binary.BigEndian.AppendUint32(b, uint32(m.State))
	}
	return binary.BigEndian.AppendUint32(b, m.Ack), nil
}

// AppendBinary appends the PERF frame. JSON must be 1..65535 bytes (lws
// clients reject an empty one).
func (m *Perf) AppendBinary(b []byte) ([]byte, error) {
	n := len(m.JSON)
	if n == 0 {
		return b, encodeError(CodePerf, ErrField, "empty PERF report")
	}
	if n > MaxBody {
		return b, encodeError(CodePerf, ErrTooLarge,
			"PERF report of "+strconv.Itoa(n)+" bytes exceeds "+strconv.Itoa(MaxBody))
	}
	b = appendHeader(b, CodePerf, n)
	return append(b, m.JSON...), nil
}
