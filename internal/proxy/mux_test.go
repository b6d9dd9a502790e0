package proxy

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// muxExchange is the observed exchange of Appendix A ("<<" and ">>" lines).
var muxExchange = []struct {
	hex string
	f   MuxFrame
}{
	{"F9", MuxFrame{Code: MuxResetTransport}},
	{"F6 00 00 00 00 2D AB 93 61", MuxFrame{Code: MuxPing, Time: 0x2DAB9361}},
	{"F7 00 00 00 00 2D AB 93 61 00 00 00 00 2D AB 94 6C", MuxFrame{Code: MuxPong, Time: 0x2DAB9361, PongTime: 0x2DAB946C}},
	{"F6 00 00 00 00 2D AB 94 9D", MuxFrame{Code: MuxPing, Time: 0x2DAB949D}},
	{"F8 00 06 61 25 87 31 4D 8A", MuxFrame{Code: MuxPongAck, Time: 0x0006612587314D8A}},
	{"F7 00 00 00 00 2D AB 94 9D 00 00 00 00 2D AB 94 E8", MuxFrame{Code: MuxPong, Time: 0x2DAB949D, PongTime: 0x2DAB94E8}},
	{"F8 00 06 61 25 87 31 50 3D", MuxFrame{Code: MuxPongAck, Time: 0x000661258731503D}},
	{"F0 FF", MuxFrame{Code: MuxChannelReq, Channel: 0xFF}},
	{"F1 FF", MuxFrame{Code: MuxChannelAck, Channel: 0xFF}},
	{"F5 FF 00 13 AA 00 10 01 00 00 00 55 1D CD 65 00 6D 69 6E 74 65 73 74",
		MuxFrame{Code: MuxData, Channel: 0xFF, Data: hx("AA 00 10 01 00 00 00 55 1D CD 65 00 6D 69 6E 74 65 73 74")}},
	{"F5 FF 00 10 56 00 0D 00 00 00 00 00 2C 6D 69 6E 74 65 73 74",
		MuxFrame{Code: MuxData, Channel: 0xFF, Data: hx("56 00 0D 00 00 00 00 00 2C 6D 69 6E 74 65 73 74")}},
	{"F5 FF 00 03 AB 00 00", MuxFrame{Code: MuxData, Channel: 0xFF, Data: hx("AB 00 00")}},
	{"F2 01", MuxFrame{Code: MuxChannelNack, Channel: 1}},
	{"F3 02", MuxFrame{Code: MuxChannelClose, Channel: 2}},
	{"F4 03", MuxFrame{Code: MuxChannelCloseAck, Channel: 3}},
	{"F5 01 00 00", MuxFrame{Code: MuxData, Channel: 1}},
}

func TestMuxGolden(t *testing.T) {
	var stream []byte
	for _, tc := range muxExchange {
		b := hx(tc.hex)
		enc, err := tc.f.AppendBinary(nil)
		if err != nil || !bytes.Equal(enc, b) {
			t.Errorf("encode %v = % X, %v; want % X", tc.f.Code, enc, err, b)
		}
		f, n, err := ParseMux(b)
		if err != nil || n != len(b) || !reflect.DeepEqual(f, tc.f) {
			t.Errorf("ParseMux(% X) = %+v, %d, %v", b, f, n, err)
		}
		for i := range len(b) {
			if f, n, err := ParseMux(b[:i]); n != 0 || err != nil || f.Code != 0 {
				t.Errorf("ParseMux(prefix %d of % X) = %+v, %d, %v", i, b, f, n, err)
			}
		}
		stream = append(stream, b...)
	}
	// The SSSv1 bytes carried in channel 255 decode as a stream.
	var ch []byte
	for len(stream) > 0 {
		f, n, err := ParseMux(stream)
		if err != nil || n == 0 {
			t.Fatal(err)
		}
		if f.Code == MuxData && f.Channel == 0xFF {
			ch = append(ch, f.Data...)
		}
		stream = stream[n:]
	}
	var msgs []string
	for len(ch) > 0 {
		dir := ClientToProxy
		if ch[0] == byte(CodeCreateResult) {
			dir = ProxyToClient
		}
		m, n, err := Parse(dir, ch, Limits{})
		if err != nil || m == nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m.Code().String())
		ch = ch[n:]
	}
	if strings.Join(msgs, ",") != "STREAMTYPE,CREATE_RESULT,ONWARD_CONNECT" {
		t.Error(msgs)
	}
}

func TestMuxErrors(t *testing.T) {
	for _, c := range []byte{0x00, 0x55, 0xAA, 0xEF, 0xFA, 0xFF} {
		_, n, err := ParseMux([]byte{c, 0, 0, 0})
		var fe *FrameError
		if n != 0 || !errors.Is(err, ErrUnknownCode) || !errors.As(err, &fe) || fe.Code != Code(c) {
			t.Errorf("ParseMux(%02X) = %d, %v", c, n, err)
		}
	}
	if _, err := (&MuxFrame{Code: 0xFA}).AppendBinary(nil); !errors.Is(err, ErrUnknownCode) {
		t.Error(err)
	}
	if _, err := (&MuxFrame{Code: MuxData, Data: make([]byte, MaxBody+1)}).AppendBinary(nil); !errors.Is(err, ErrTooLarge) {
		t.Error(err)
	}
	if b, err := (&MuxFrame{Code: MuxData, Data: make([]byte, MaxBody)}).AppendBinary(nil); err != nil || len(b) != 4+MaxBody {
		t.Error(len(b), err)
	}
	if MuxPongAck.String() != "PONGACK" || MuxCode(0xFA).String() != "0xFA" {
		t.Error(MuxPongAck, MuxCode(0xFA))
	}
	in := hx("F5 FF 00 03 AB 00 00")
	if allocs := testing.AllocsPerRun(100, func() { _, _, _ = ParseMux(in) }); allocs != 0 {
		t.Errorf("%.0f allocs", allocs)
	}
}

// FuzzParseMux: no panic, consumption within the input, round trip.
func FuzzParseMux(f *testing.F) {
	var all []byte
	for _, tc := range muxExchange {
		f.Add(hx(tc.hex))
		all = append(all, hx(tc.hex)...)
	}
	f.Add(all)
	f.Fuzz(func(t *testing.T, data []byte) {
		for len(data) > 0 {
			fr, n, err := ParseMux(data)
			if err != nil {
				if !errors.Is(err, ErrUnknownCode) || n != 0 {
					t.Fatal(n, err)
				}
				return
			}
			if n == 0 {
				return
			}
			if n > len(data) {
				t.Fatalf("consumed %d of %d", n, len(data))
			}
			enc, err := fr.AppendBinary(nil)
			if err != nil || !bytes.Equal(enc, data[:n]) {
				t.Fatalf("round trip % X → %+v → % X, %v", data[:n], fr, enc, err)
			}
			data = data[n:]
		}
	})
}
