package proxy

import (
	"encoding/binary"
	"strconv"

	"github.com/securestreams/ss/internal/event"
)

// MaxDecodedRideshares bounds the names a decoded CREATE_RESULT list may hold,
// so that decoding never allocates much more than the frame (lws proxies send
// at most 3; lws clients reject more than 3).
const MaxDecodedRideshares = 16

// Parse decodes the frame at the start of b, travelling in direction dir.
//
// It returns the message and the frame's length n once b holds the whole
// frame. While b holds less than a whole frame it returns (nil, 0, nil), but
// the header is checked as soon as its 3 bytes are present, so an unknown code
// or an oversized length fails before the body arrives. Parse keeps no state:
// a caller accumulates bytes in any pieces and calls it again.
//
// The message's []byte fields (Payload, Value, JSON) alias b; strings are
// copies. A malformed frame returns a *FrameError whose Offset is 0.
func Parse(dir Direction, b []byte, lim Limits) (msg Message, n int, err error) {
	if len(b) < HeaderLen {
		return nil, 0, nil
	}
	c := Code(b[0])
	l := int(binary.BigEndian.Uint16(b[1:3]))
	if fe := checkHeader(dir, lim, c, l); fe != nil {
		fe.Offset = 0
		return nil, 0, fe
	}
	if len(b) < HeaderLen+l {
		return nil, 0, nil
	}
	msg, fe := decodeBody(dir, lim, c, b[HeaderLen:HeaderLen+l], nil, false)
	if fe != nil {
		fe.Offset = 0
		return nil, 0, fe
	}
	return msg, HeaderLen + l, nil
}

// checkHeader validates the code for the direction and the body length
// against the message layout and the limits, before any body byte is used.
func checkHeader(dir Direction, lim Limits, c Code, l int) *FrameError {
	minL, maxL, class := bodyBounds(dir, lim, c)
	if class != nil {
		reason := "code 0x" + strconv.FormatUint(uint64(c), 16)
		switch class {
		case ErrWrongDirection:
			reason += " is only sent " + otherDirection(dir).String()
		case ErrReserved:
			reason += " is reserved and never sent"
		default:
			reason += " is not an SSSv1 message"
		}
		return &FrameError{Dir: dir, Code: c, Field: 0, Reason: reason, Err: class}
	}
	if l < minL || l > maxL {
		class := ErrLength
		if l > maxL && limitBound(c) {
			class = ErrTooLarge
		}
		want := strconv.Itoa(minL)
		if maxL != minL {
			want += ".." + strconv.Itoa(maxL)
		}
		return &FrameError{Dir: dir, Code: c, Field: 1,
			Reason: "body length " + strconv.Itoa(l) + ", want " + want, Err: class}
	}
	return nil
}

func otherDirection(d Direction) Direction {
	if d == ClientToProxy {
		return ProxyToClient
	}
	return ClientToProxy
}

// limitBound reports whether the largest L of code c derives from Limits
// (ErrTooLarge when exceeded) rather than from the layout (ErrLength).
func limitBound(c Code) bool {
	switch c {
	case CodeRxPayload, CodeTxPayload, CodeTxMetadata, CodeRxMetadata:
		return true
	}
	return false
}

// payloadFrameMax is the largest L of a payload frame whose payload is at
// most maxPayload bytes: the fixed fields plus the longest rideshare name.
func payloadFrameMax(maxPayload int) int {
	return min(MaxBody, PayloadHeaderLen+1+MaxRideshareName+maxPayload)
}

// bodyBounds returns the L bounds for code c in direction dir, or the error
// class when the code is not acceptable (§2.4, §8).
func bodyBounds(dir Direction, lim Limits, c Code) (minL, maxL int, class error) {
	if dir != ClientToProxy && dir != ProxyToClient {
		return 0, 0, ErrUnknownCode // no code is valid without a direction
	}
	switch c {
	case CodeTLSSign, CodeTLSSigned, CodeLinkProbe:
		return 0, 0, ErrReserved
	case CodePerf:
		if dir == ClientToProxy {
			return 0, MaxBody, nil // tolerated, skipped by the proxy (§8)
		}
		return 1, MaxBody, nil
	}
	if dir == ClientToProxy {
		switch c {
		case CodeStreamType:
			return 9 + 1, 9 + MaxStreamTypeName, nil
		case CodeOnwardConnect, CodeDestroying:
			return 0, 0, nil
		case CodeTxPayload:
			return PayloadHeaderLen, payloadFrameMax(lim.maxTx()), nil
		case CodeTxMetadata:
			return 2, min(MaxBody, 1+MaxMetadataName+lim.maxMeta()), nil
		case CodeTxCredit, CodeTimeoutUpdate, CodePayloadLengthHint:
			return 4, 4, nil
		case CodeRxPayload, CodeCreateResult, CodeConnState, CodeRxCredit, CodeRxMetadata:
			return 0, 0, ErrWrongDirection
		}
		return 0, 0, ErrUnknownCode
	}
	switch c {
	case CodeRxPayload:
		return PayloadHeaderLen, payloadFrameMax(lim.maxRx()), nil
	case CodeCreateResult:
		return 1, MaxBody, nil
	case CodeConnState:
		return 5, 8, nil
	case CodeRxCredit, CodeTxCredit: // 0xAF accepted as credit (W7)
		return 4, 4, nil
	case CodeRxMetadata:
		return 2, min(MaxBody, 1+MaxMetadataName+lim.maxMeta()), nil
	case CodeStreamType, CodeOnwardConnect, CodeDestroying, CodeTxPayload, CodeTxMetadata,
		CodeTimeoutUpdate, CodePayloadLengthHint:
		return 0, 0, ErrWrongDirection
	}
	return 0, 0, ErrUnknownCode
}

// scratch holds one message of each type for a borrowing Decoder, so that
// decoding does not allocate.
type scratch struct {
	st  StreamType
	tx  TxPayload
	tm  TxMetadata
	tc  TxCredit
	tu  TimeoutUpdate
	lh  PayloadLengthHint
	cr  CreateResult
	cs  ConnState
	rc  RxCredit
	rm  RxMetadata
	rx  RxPayload
	pf  Perf
	oc  OnwardConnect
	dst Destroying
}

// slot returns the scratch message selected by field, zeroed, or a new one
// when sc is nil.
func slot[T any](sc *scratch, field func(*scratch) *T) *T {
	if sc == nil {
		return new(T)
	}
	p := field(sc)
	var zero T
	*p = zero
	return p
}

// bytesField returns b as a message field: nil when empty, b itself when the
// caller may alias it, otherwise a copy.
func bytesField(b []byte, copyIt bool) []byte {
	if len(b) == 0 {
		return nil
	}
	if !copyIt {
		return b
	}
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

// decodeBody decodes a body whose code and length passed checkHeader. With
// sc != nil the message is taken from sc; with copyIt the []byte fields are
// copies of body, otherwise they alias it. Field offsets in errors count from
// the frame's first byte.
func decodeBody(dir Direction, lim Limits, c Code, body []byte, sc *scratch, copyIt bool) (Message, *FrameError) {
	bad := func(field int, class error, reason string) *FrameError {
		return &FrameError{Dir: dir, Code: c, Field: field, Reason: reason, Err: class}
	}
	switch c {
	case CodeStreamType:
		if body[0] != Version {
			return nil, bad(3, ErrVersion, "version "+strconv.Itoa(int(body[0]))+", want 1")
		}
		m := slot(sc, func(s *scratch) *StreamType { return &s.st })
		m.PID = binary.BigEndian.Uint32(body[1:5])
		m.Credit = int32(binary.BigEndian.Uint32(body[5:9]))
		m.Name = string(body[9:])
		return m, nil
	case CodeOnwardConnect:
		return slot(sc, func(s *scratch) *OnwardConnect { return &s.oc }), nil
	case CodeDestroying:
		return slot(sc, func(s *scratch) *Destroying { return &s.dst }), nil
	case CodeTxPayload:
		m := slot(sc, func(s *scratch) *TxPayload { return &s.tx })
		flags, us32, us64, rs, payload, fe := decodePayload(body, lim.maxTx(), bad)
		if fe != nil {
			return nil, fe
		}
		m.Flags, m.DelayUS, m.TimeUS, m.Rideshare = flags, us32, us64, rs
		m.Payload = bytesField(payload, copyIt)
		return m, nil
	case CodeRxPayload:
		m := slot(sc, func(s *scratch) *RxPayload { return &s.rx })
		flags, _, us64, rs, payload, fe := decodePayload(body, lim.maxRx(), bad)
		if fe != nil {
			return nil, fe
		}
		m.Flags, m.TimeUS, m.Rideshare = flags, us64, rs
		m.Payload = bytesField(payload, copyIt)
		return m, nil
	case CodeTxMetadata:
		name, value, fe := decodeMetadata(body, lim.maxMeta(), bad)
		if fe != nil {
			return nil, fe
		}
		m := slot(sc, func(s *scratch) *TxMetadata { return &s.tm })
		m.Name, m.Value = name, bytesField(value, copyIt)
		return m, nil
	case CodeRxMetadata:
		name, value, fe := decodeMetadata(body, lim.maxMeta(), bad)
		if fe != nil {
			return nil, fe
		}
		m := slot(sc, func(s *scratch) *RxMetadata { return &s.rm })
		m.Name, m.Value = name, bytesField(value, copyIt)
		return m, nil
	case CodeTxCredit:
		v := int32(binary.BigEndian.Uint32(body))
		if dir == ProxyToClient { // W7: 0xAF from a proxy is credit
			m := slot(sc, func(s *scratch) *RxCredit { return &s.rc })
			m.Delta = v
			return m, nil
		}
		m := slot(sc, func(s *scratch) *TxCredit { return &s.tc })
		m.Delta = v
		return m, nil
	case CodeRxCredit:
		m := slot(sc, func(s *scratch) *RxCredit { return &s.rc })
		m.Delta = int32(binary.BigEndian.Uint32(body))
		return m, nil
	case CodeTimeoutUpdate:
		m := slot(sc, func(s *scratch) *TimeoutUpdate { return &s.tu })
		m.Millis = binary.BigEndian.Uint32(body)
		return m, nil
	case CodePayloadLengthHint:
		m := slot(sc, func(s *scratch) *PayloadLengthHint { return &s.lh })
		m.Length = binary.BigEndian.Uint32(body)
		return m, nil
	case CodeCreateResult:
		return decodeCreateResult(body, sc, bad)
	case CodeConnState:
		m := slot(sc, func(s *scratch) *ConnState { return &s.cs })
		var st uint32
		for _, x := range body[:len(body)-4] {
			st = st<<8 | uint32(x)
		}
		m.State = event.State(st)
		m.Ack = binary.BigEndian.Uint32(body[len(body)-4:])
		return m, nil
	case CodePerf:
		m := slot(sc, func(s *scratch) *Perf { return &s.pf })
		m.JSON = bytesField(body, copyIt)
		return m, nil
	}
	// checkHeader admits no other code.
	return nil, bad(0, ErrUnknownCode, "unexpected code")
}

type badFunc func(field int, class error, reason string) *FrameError

// decodePayload splits an RX_PAYLOAD / TX_PAYLOAD body (§3.4, §4.5).
func decodePayload(body []byte, maxPayload int, bad badFunc) (flags event.Flags, us32 uint32, us64 uint64, rideshare string, payload []byte, fe *FrameError) {
	raw := binary.BigEndian.Uint32(body[0:4])
	us32 = binary.BigEndian.Uint32(body[4:8])
	us64 = binary.BigEndian.Uint64(body[8:16])
	off := PayloadHeaderLen
	if raw&rideshareBit != 0 {
		if len(body) < PayloadHeaderLen+1 {
			return 0, 0, 0, "", nil, bad(HeaderLen+off, ErrField, "RIDESHARE set but no rideshare length")
		}
		r := int(body[off])
		if r < 1 || r > MaxRideshareName {
			return 0, 0, 0, "", nil, bad(HeaderLen+off, ErrField,
				"rideshare name length "+strconv.Itoa(r)+", want 1.."+strconv.Itoa(MaxRideshareName))
		}
		if PayloadHeaderLen+1+r > len(body) {
			return 0, 0, 0, "", nil, bad(HeaderLen+off, ErrField,
				"rideshare name of "+strconv.Itoa(r)+" bytes overruns body of "+strconv.Itoa(len(body)))
		}
		rideshare = string(body[off+1 : off+1+r])
		off += 1 + r
	}
	payload = body[off:]
	if len(payload) > maxPayload {
		return 0, 0, 0, "", nil, bad(HeaderLen+off, ErrTooLarge,
			"payload of "+strconv.Itoa(len(payload))+" bytes exceeds limit "+strconv.Itoa(maxPayload))
	}
	return event.Flags(raw) & WireFlags, us32, us64, rideshare, payload, nil
}

// decodeMetadata splits a METADATA body (§3.5, §4.4).
func decodeMetadata(body []byte, maxValue int, bad badFunc) (name string, value []byte, fe *FrameError) {
	k := int(body[0])
	if k < 1 || k > MaxMetadataName || k > len(body)-1 {
		return "", nil, bad(HeaderLen, ErrField, "metadata name length "+strconv.Itoa(k)+
			", want 1.."+strconv.Itoa(min(MaxMetadataName, len(body)-1)))
	}
	value = body[1+k:]
	if len(value) > maxValue {
		return "", nil, bad(HeaderLen+1+k, ErrTooLarge,
			"metadata value of "+strconv.Itoa(len(value))+" bytes exceeds limit "+strconv.Itoa(maxValue))
	}
	return string(body[1 : 1+k]), value, nil
}

// decodeCreateResult decodes CREATE_RESULT (§4.1): a failed result needs only
// the result byte; a successful one at least 5 bytes. The list is parsed
// leniently: with or without leading comma, empty names dropped.
func decodeCreateResult(body []byte, sc *scratch, bad badFunc) (Message, *FrameError) {
	res := body[0]
	if res == ResultOK && len(body) < 5 {
		return nil, bad(1, ErrLength, "successful result with body length "+strconv.Itoa(len(body))+", want ≥ 5")
	}
	var list []byte
	if len(body) >= 5 && res == ResultOK {
		list = body[5:]
	}
	names := 0
	for i := 0; i < len(list); {
		j := i
		for j < len(list) && list[j] != ',' {
			j++
		}
		if j > i {
			names++
		}
		i = j + 1
	}
	if names > MaxDecodedRideshares {
		return nil, bad(HeaderLen+5, ErrTooLarge,
			"rideshare list of "+strconv.Itoa(names)+" names exceeds "+strconv.Itoa(MaxDecodedRideshares))
	}
	m := slot(sc, func(s *scratch) *CreateResult { return &s.cr })
	m.Result = res
	if len(body) >= 5 {
		m.ClientBuflen = binary.BigEndian.Uint32(body[1:5])
	}
	if names > 0 {
		m.Rideshares = make([]string, 0, names)
		for i := 0; i < len(list); {
			j := i
			for j < len(list) && list[j] != ',' {
				j++
			}
			if j > i {
				m.Rideshares = append(m.Rideshares, string(list[i:j]))
			}
			i = j + 1
		}
	}
	return m, nil
}
