package proxy

import (
	"encoding/binary"
	"strconv"
)

// MuxCode is a frame code of the optional lws transport mux (docs/wire.md
// Appendix A), which carries several SSSv1 links over one serial byte stream.
type MuxCode uint8

// Mux frame codes (Appendix A).
const (
	MuxChannelReq      MuxCode = 0xF0 // ch
	MuxChannelAck      MuxCode = 0xF1 // ch
	MuxChannelNack     MuxCode = 0xF2 // ch
	MuxChannelClose    MuxCode = 0xF3 // ch
	MuxChannelCloseAck MuxCode = 0xF4 // ch
	MuxData            MuxCode = 0xF5 // ch, u16 length, SSSv1 bytes
	MuxPing            MuxCode = 0xF6 // sender's monotonic µs
	MuxPong            MuxCode = 0xF7 // echoed PING value, sender's monotonic µs
	MuxPongAck         MuxCode = 0xF8 // sender's unix-epoch µs
	MuxResetTransport  MuxCode = 0xF9 // none
)

var muxNames = [...]string{"CHANNEL_REQ", "CHANNEL_ACK", "CHANNEL_NACK", "CHANNEL_CLOSE",
	"CHANNEL_CLOSE_ACK", "MUX", "PING", "PONG", "PONGACK", "RESET_TRANSPORT"}

// String returns the frame name, e.g. "PING", or "0xNN" when unknown.
func (c MuxCode) String() string {
	if c >= MuxChannelReq && c <= MuxResetTransport {
		return muxNames[c-MuxChannelReq]
	}
	return Code(c).String()
}

// muxLen is the fixed length of a mux frame, code included; for MuxData, the
// length before the data. 0 for unknown codes.
func muxLen(c MuxCode) int {
	switch {
	case c >= MuxChannelReq && c <= MuxChannelCloseAck:
		return 2
	case c == MuxData:
		return 4
	case c == MuxPing, c == MuxPongAck:
		return 9
	case c == MuxPong:
		return 17
	case c == MuxResetTransport:
		return 1
	}
	return 0
}

// MuxFrame is one mux frame. Which fields are used depends on Code.
type MuxFrame struct {
	Code MuxCode
	// Channel is the channel number (CHANNEL_* and MUX frames).
	Channel uint8
	// Data is a MUX frame's piece of the channel's SSSv1 byte stream; the
	// pieces of a channel form one continuous stream (feed them to Parse or
	// a Decoder). ParseMux makes it alias its input.
	Data []byte
	// Time is the PING's sender µs, the PONG's echoed PING value, or the
	// PONGACK's unix-epoch µs.
	Time uint64
	// PongTime is the PONG sender's monotonic µs.
	PongTime uint64
}

// AppendBinary appends the mux frame to b. It fails, appending nothing, for
// an unknown code or Data longer than 65535 bytes.
func (f *MuxFrame) AppendBinary(b []byte) ([]byte, error) {
	switch n := muxLen(f.Code); n {
	case 0:
		return b, encodeError(Code(f.Code), ErrUnknownCode, "not a mux frame code")
	case 2:
		return append(b, byte(f.Code), f.Channel), nil
	case 4:
		if len(f.Data) > MaxBody {
			return b, encodeError(Code(f.Code), ErrTooLarge,
				"mux data of "+strconv.Itoa(len(f.Data))+" bytes exceeds "+strconv.Itoa(MaxBody))
		}
		b = append(b, byte(f.Code), f.Channel, byte(len(f.Data)>>8), byte(len(f.Data)))
		return append(b, f.Data...), nil
	case 1:
		return append(b, byte(f.Code)), nil
	default:
		b = append(b, byte(f.Code))
		b = binary.BigEndian.AppendUint64(b, f.Time)
		if f.Code == MuxPong {
			b = binary.BigEndian.AppendUint64(b, f.PongTime)
		}
		return b, nil
	}
}

// ParseMux decodes the mux frame at the start of b. Like Parse it returns
// n = 0 and no error while b holds less than a whole frame. An unknown code is
// a *FrameError wrapping ErrUnknownCode: the transport has lost sync, and an
// lws peer answers with RESET_TRANSPORT. It does not allocate.
func ParseMux(b []byte) (f MuxFrame, n int, err error) {
	if len(b) == 0 {
		return f, 0, nil
	}
	f.Code = MuxCode(b[0])
	n = muxLen(f.Code)
	if n == 0 {
		return MuxFrame{}, 0, &FrameError{Code: Code(b[0]), Field: 0,
			Reason: "code 0x" + strconv.FormatUint(uint64(b[0]), 16) + " is not a mux frame (lost sync)",
			Err:    ErrUnknownCode}
	}
	if len(b) < n {
		return MuxFrame{}, 0, nil
	}
	switch f.Code {
	case MuxData:
		l := int(binary.BigEndian.Uint16(b[2:4]))
		if len(b) < n+l {
			return MuxFrame{}, 0, nil
		}
		f.Channel = b[1]
		if l > 0 {
			f.Data = b[4 : 4+l]
		}
		return f, n + l, nil
	case MuxPing, MuxPongAck:
		f.Time = binary.BigEndian.Uint64(b[1:9])
	case MuxPong:
		f.Time = binary.BigEndian.Uint64(b[1:9])
		f.PongTime = binary.BigEndian.Uint64(b[9:17])
	case MuxResetTransport:
	default:
		f.Channel = b[1]
	}
	return f, n, nil
}
