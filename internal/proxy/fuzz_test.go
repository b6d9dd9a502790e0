package proxy

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/securestreams/ss/internal/event"
)

func addSeeds(f *testing.F, dir Direction) {
	for _, g := range goldens {
		if g.dir == dir {
			f.Add(hx(g.hex), uint16(0))
		}
	}
	stream := goldenClientStream
	if dir == ProxyToClient {
		stream = goldenProxyStream
	}
	for _, s := range []uint16{0, 1, 3, 17, 0xFFFF} {
		f.Add(hx(stream), s)
	}
	f.Add(cat(hx(stream), hx("AD 00 11 00000020 00000000 0000000000000000 05")), uint16(2))
	f.Add(hx("55 00 17 00 00 00 23 00 00 00 00 00 00 00 00 00 00 00 01 04 62 75 66 64 68 69 56 00 07 00 00 00 00 00 61 2C"), uint16(5))
}

// splitReader returns data in reads whose sizes follow split.
type splitReader struct {
	data  []byte
	split uint16
	i     int
}

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := 1 + int(r.split>>(r.i%12))&0x7ff
	r.i++
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// fuzzDecode checks, for any input: no panic; Parse (push style) and the
// Decoder in both modes agree on messages and on the error; every error is
// a *FrameError of a known class (or io.EOF); nothing decoded is larger than
// the input; every message round-trips through its encoder unless the
// encoder refuses it for a documented reason.
func fuzzDecode(t *testing.T, dir Direction, data []byte, split uint16) {
	lim := Limits{MaxTxPayload: int(split)} // 0 → default; small values exercise ErrTooLarge
	var want []Message
	var wantErr error
	off := 0
	for {
		m, n, err := Parse(dir, data[off:], lim)
		if err != nil {
			wantErr = err
			break
		}
		if m == nil {
			if off == len(data) {
				wantErr = io.EOF
			} else {
				wantErr = ErrTruncated
			}
			break
		}
		if n < HeaderLen || n > len(data)-off {
			t.Fatalf("Parse consumed %d of %d", n, len(data)-off)
		}
		off += n
		want = append(want, Clone(m))
	}
	checkErr := func(how string, err error) {
		t.Helper()
		if err == io.EOF {
			if wantErr != io.EOF {
				t.Fatalf("%s: io.EOF, Parse gave %v", how, wantErr)
			}
			return
		}
		var fe *FrameError
		if !errors.As(err, &fe) {
			t.Fatalf("%s: %T %v is not a *FrameError", how, err, err)
		}
		known := false
		for _, c := range []error{ErrUnknownCode, ErrWrongDirection, ErrReserved, ErrLength, ErrTooLarge, ErrVersion, ErrField, ErrTruncated} {
			if fe.Err == c {
				known = true
			}
		}
		if !known || fe.Error() == "" {
			t.Fatalf("%s: unknown class %v", how, fe.Err)
		}
		if !errors.Is(err, wantErr) && !errors.Is(wantErr, fe.Err) {
			t.Fatalf("%s: %v, Parse gave %v", how, err, wantErr)
		}
		if wantErr != ErrTruncated && fe.Offset != int64(off) {
			t.Fatalf("%s: offset %d, want %d", how, fe.Offset, off)
		}
	}
	total := 0
	for _, m := range want {
		total += msgSize(m)
	}
	if total > len(data) {
		t.Fatalf("decoded %d bytes from %d", total, len(data))
	}
	for _, borrow := range []bool{false, true} {
		d := NewDecoder(&splitReader{data: data, split: split}, dir, lim)
		d.SetBorrow(borrow)
		var got []Message
		var err error
		for {
			var m Message
			if m, err = d.Next(); err != nil {
				break
			}
			got = append(got, Clone(m))
		}
		if len(d.buf) > MaxFrame {
			t.Fatalf("buffer grew to %d", len(d.buf))
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Decoder(borrow %v) = %v, Parse = %v", borrow, got, want)
		}
		checkErr("Decoder", err)
	}
	for _, m := range want {
		roundTrip(t, dir, m)
	}
}

func msgSize(m Message) int {
	switch m := m.(type) {
	case *TxPayload:
		return len(m.Payload) + len(m.Rideshare)
	case *RxPayload:
		return len(m.Payload) + len(m.Rideshare)
	case *TxMetadata:
		return len(m.Name) + len(m.Value)
	case *RxMetadata:
		return len(m.Name) + len(m.Value)
	case *Perf:
		return len(m.JSON)
	case *StreamType:
		return len(m.Name)
	case *CreateResult:
		n := 0
		for _, s := range m.Rideshares {
			n += len(s)
		}
		return n
	}
	return 0
}

// roundTrip encodes a decoded message and decodes it again.
func roundTrip(t *testing.T, dir Direction, m Message) {
	t.Helper()
	b, err := m.AppendBinary(nil)
	if err != nil {
		// Refusals the encoder documents for frames a decoder accepts.
		ok := false
		switch m := m.(type) {
		case *TxMetadata:
			ok = len(m.Value) == 0
		case *RxMetadata:
			ok = len(m.Value) == 0 || 4+len(m.Name)+len(m.Value) > MaxProxyMetadataFrame
		case *CreateResult:
			ok = errors.Is(err, ErrTooLarge)
		case *Perf:
			ok = len(m.JSON) == 0
		}
		if !ok {
			t.Fatalf("encode %#v: %v", m, err)
		}
		return
	}
	m2, n, err := Parse(dir, b, Limits{MaxTxPayload: MaxBody})
	if err != nil || n != len(b) || !reflect.DeepEqual(m2, m) {
		t.Fatalf("round trip %#v → % X → %#v, %v", m, b, m2, err)
	}
	if !bytes.Equal(b[:1], []byte{byte(m.Code())}) {
		t.Fatalf("code %v", m.Code())
	}
}

func FuzzDecodeClient(f *testing.F) {
	addSeeds(f, ClientToProxy)
	f.Fuzz(func(t *testing.T, data []byte, split uint16) { fuzzDecode(t, ClientToProxy, data, split) })
}

func FuzzDecodeProxy(f *testing.F) {
	addSeeds(f, ProxyToClient)
	f.Fuzz(func(t *testing.T, data []byte, split uint16) { fuzzDecode(t, ProxyToClient, data, split) })
}

// FuzzRoundTrip builds messages from fuzzed fields, encodes them and checks
// that encoding either refuses or produces a frame that decodes to the same
// message.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(0), uint32(3), uint64(1), "mintest", []byte("hello"))
	f.Add(uint8(5), uint32(0x23), uint64(0), "bufd", []byte{})
	f.Add(uint8(9), uint32(1530), uint64(7), "", []byte("x"))
	f.Fuzz(func(t *testing.T, kind uint8, n uint32, u uint64, s string, b []byte) {
		var m Message
		dir := ClientToProxy
		switch kind % 14 {
		case 0:
			m = &StreamType{PID: n, Credit: int32(u), Name: s}
		case 1:
			m = &TxPayload{Flags: flagsOf(n, s), DelayUS: uint32(u), TimeUS: u, Rideshare: s, Payload: nilIfEmpty(b)}
		case 2:
			m = &TxMetadata{Name: s, Value: nilIfEmpty(b)}
		case 3:
			m = &TxCredit{Delta: int32(n)}
		case 4:
			m = &TimeoutUpdate{Millis: n}
		case 5:
			m = &PayloadLengthHint{Length: n}
		case 6:
			m = &OnwardConnect{}
		case 7:
			m = &Destroying{}
		default:
			dir = ProxyToClient
			switch kind % 14 {
			case 8:
				var names []string
				for _, x := range bytes.Split([]byte(s), []byte{0}) {
					names = append(names, string(x))
				}
				m = &CreateResult{Result: uint8(n) & 1, ClientBuflen: uint32(u), Rideshares: names}
				if n&1 != 0 {
					m = &CreateResult{Result: uint8(n) | 1, ClientBuflen: uint32(u)}
				}
			case 9:
				m = &ConnState{State: event.State(n), Ack: uint32(u)}
			case 10:
				m = &RxCredit{Delta: int32(n)}
			case 11:
				m = &RxMetadata{Name: s, Value: nilIfEmpty(b)}
			case 12:
				m = &RxPayload{Flags: flagsOf(n, s), TimeUS: u, Rideshare: s, Payload: nilIfEmpty(b)}
			default:
				m = &Perf{JSON: nilIfEmpty(b)}
			}
		}
		enc, err := m.AppendBinary(nil)
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) || fe.Offset != -1 {
				t.Fatalf("encode error %v", err)
			}
			return
		}
		got, k, err := Parse(dir, enc, Limits{MaxTxPayload: MaxBody})
		if err != nil || k != len(enc) || !reflect.DeepEqual(got, m) {
			t.Fatalf("%#v → % X → %#v, %v", m, enc, got, err)
		}
	})
}

// flagsOf keeps a message's flags consistent with what decoding yields:
// WireFlags only, RIDESHARE exactly when there is a rideshare name.
func flagsOf(n uint32, rideshare string) event.Flags {
	f := event.Flags(n) & WireFlags &^ event.RideshareFlag
	if rideshare != "" {
		f |= event.RideshareFlag
	}
	return f
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
