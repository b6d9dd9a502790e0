package proxy

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/evloop"
	"github.com/securestreams/ss/internal/testutil"
)

// frame builds a frame from a code and body, L taken from the body.
func frame(c Code, body ...[]byte) []byte {
	var b []byte
	for _, p := range body {
		b = append(b, p...)
	}
	return append([]byte{byte(c), byte(len(b) >> 8), byte(len(b))}, b...)
}

func rep(c byte, n int) []byte { return bytes.Repeat([]byte{c}, n) }

// payloadBody builds an RX/TX body: flags, 4 zero bytes, time 0, then rest.
func payloadBody(flags uint32, rest ...[]byte) []byte {
	b := []byte{byte(flags >> 24), byte(flags >> 16), byte(flags >> 8), byte(flags), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	for _, p := range rest {
		b = append(b, p...)
	}
	return b
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestDecodeValid(t *testing.T) {
	big := rep('x', MaxPayload)
	tests := []struct {
		name string
		dir  Direction
		lim  Limits
		in   []byte
		want Message
	}{
		// STREAMTYPE name boundaries.
		{"streamtype name 1", ClientToProxy, Limits{}, frame(CodeStreamType, hx("01 00000000 00000000"), []byte("a")),
			&StreamType{Name: "a"}},
		{"streamtype name 31", ClientToProxy, Limits{}, frame(CodeStreamType, hx("01 FFFFFFFF FFFFFFFF"), rep('n', 31)),
			&StreamType{PID: 0xFFFFFFFF, Credit: -1, Name: strings.Repeat("n", 31)}},
		{"destroying", ClientToProxy, Limits{}, hx("AC 00 00"), &Destroying{}},
		// TX_PAYLOAD boundaries.
		{"tx empty payload", ClientToProxy, Limits{}, frame(CodeTxPayload, payloadBody(3)),
			&TxPayload{Flags: 3}},
		{"tx payload at default proxy_buflen", ClientToProxy, Limits{},
			frame(CodeTxPayload, payloadBody(0), rep('p', DefaultProxyBuflen)),
			&TxPayload{Payload: rep('p', DefaultProxyBuflen)}},
		{"tx payload at set limit", ClientToProxy, Limits{MaxTxPayload: 10},
			frame(CodeTxPayload, payloadBody(0), rep('p', 10)), &TxPayload{Payload: rep('p', 10)}},
		{"tx payload at format limit", ClientToProxy, Limits{MaxTxPayload: 1 << 20},
			frame(CodeTxPayload, payloadBody(0), big), &TxPayload{Payload: big}},
		{"tx rideshare 1 empty payload", ClientToProxy, Limits{}, frame(CodeTxPayload, payloadBody(0x20), hx("01 41")),
			&TxPayload{Flags: event.RideshareFlag, Rideshare: "A"}},
		{"tx rideshare 31", ClientToProxy, Limits{}, frame(CodeTxPayload, payloadBody(0x21), []byte{31}, rep('r', 31), []byte("x")),
			&TxPayload{Flags: event.RideshareFlag | event.SOM, Rideshare: strings.Repeat("r", 31), Payload: []byte("x")}},
		{"tx unknown flag bits dropped", ClientToProxy, Limits{}, frame(CodeTxPayload, payloadBody(0xFFFFFFDF)),
			&TxPayload{Flags: WireFlags &^ event.RideshareFlag}},
		{"tx delay and time", ClientToProxy, Limits{}, frame(CodeTxPayload, hx("00000001 01020304 0A0B0C0D0E0F1011")),
			&TxPayload{Flags: event.SOM, DelayUS: 0x01020304, TimeUS: 0x0A0B0C0D0E0F1011}},
		// METADATA boundaries (proxy accepts an empty value).
		{"tx metadata k1 v0", ClientToProxy, Limits{}, hx("AE 00 02 01 61"), &TxMetadata{Name: "a"}},
		{"tx metadata k30", ClientToProxy, Limits{}, frame(CodeTxMetadata, []byte{30}, rep('k', 30), []byte("v")),
			&TxMetadata{Name: strings.Repeat("k", 30), Value: []byte("v")}},
		{"tx metadata value at limit", ClientToProxy, Limits{MaxMetadataValue: 3}, hx("AE 00 05 01 61 62 63 64"),
			&TxMetadata{Name: "a", Value: []byte("bcd")}},
		{"tx credit negative", ClientToProxy, Limits{}, hx("AF 00 04 FF FF FF FF"), &TxCredit{Delta: -1}},
		{"timeout default", ClientToProxy, Limits{}, hx("B0 00 04 00 00 00 00"), &TimeoutUpdate{}},
		{"length hint max", ClientToProxy, Limits{}, hx("B1 00 04 FF FF FF FF"), &PayloadLengthHint{Length: 0xFFFFFFFF}},
		// §8: the proxy tolerates PERF from a client, any length.
		{"perf from client empty", ClientToProxy, Limits{}, hx("5B 00 00"), &Perf{}},
		{"perf from client", ClientToProxy, Limits{}, hx("5B 00 01 7B"), &Perf{JSON: []byte("{")}},

		// CREATE_RESULT leniency (W1, W2).
		{"create result no leading comma", ProxyToClient, Limits{}, frame(CodeCreateResult, hx("00 00008000"), []byte("a,b")),
			&CreateResult{ClientBuflen: 32768, Rideshares: []string{"a", "b"}}},
		{"create result empty slots", ProxyToClient, Limits{}, frame(CodeCreateResult, hx("00 00000000"), []byte(",,a,,b,")),
			&CreateResult{Rideshares: []string{"a", "b"}}},
		{"create result empty list", ProxyToClient, Limits{}, hx("56 00 05 00 00 00 00 00"), &CreateResult{}},
		{"create result only commas", ProxyToClient, Limits{}, hx("56 00 07 00 00 00 00 00 2C 2C"), &CreateResult{}},
		{"create result failed L1", ProxyToClient, Limits{}, hx("56 00 01 01"), &CreateResult{Result: 1}},
		{"create result failed other code", ProxyToClient, Limits{}, hx("56 00 01 07"), &CreateResult{Result: 7}},
		{"create result failed with trailing bytes", ProxyToClient, Limits{}, hx("56 00 07 01 00 00 00 09 2C 61"),
			&CreateResult{Result: 1, ClientBuflen: 9}},
		{"create result L high byte set", ProxyToClient, Limits{},
			frame(CodeCreateResult, hx("00 00000000"), []byte(","), rep('a', 150), []byte(","), rep('b', 150)),
			&CreateResult{Rideshares: []string{strings.Repeat("a", 150), strings.Repeat("b", 150)}}},
		{"create result 16 names", ProxyToClient, Limits{},
			frame(CodeCreateResult, hx("00 00000000"), bytes.Repeat([]byte(",n"), MaxDecodedRideshares)),
			&CreateResult{Rideshares: strings.Split(strings.Repeat("n", MaxDecodedRideshares), "")}},
		// CONNSTATE forms: the state is the first L-4 bytes.
		{"connstate L6", ProxyToClient, Limits{}, hx("57 00 06 00 05 00 00 00 07"), &ConnState{State: 5, Ack: 7}},
		{"connstate L7", ProxyToClient, Limits{}, hx("57 00 07 01 02 03 FF FF FF FF"), &ConnState{State: 0x010203, Ack: 0xFFFFFFFF}},
		{"connstate long small", ProxyToClient, Limits{}, hx("57 00 08 00 00 00 05 00 00 00 01"), &ConnState{State: 5, Ack: 1}},
		// W7: 0xAF from a proxy is credit.
		{"0xAF as rx credit", ProxyToClient, Limits{}, hx("AF 00 04 00 00 10 00"), &RxCredit{Delta: 4096}},
		{"rx credit", ProxyToClient, Limits{}, hx("58 00 04 80 00 00 00"), &RxCredit{Delta: -1 << 31}},
		// METADATA from the proxy: v = 0 accepted (§4.4), W8 needs no codec support.
		{"rx metadata empty value", ProxyToClient, Limits{}, hx("59 00 02 01 61"), &RxMetadata{Name: "a"}},
		{"rx metadata big value", ProxyToClient, Limits{}, frame(CodeRxMetadata, []byte{1, 'a'}, rep('v', 5000)),
			&RxMetadata{Name: "a", Value: rep('v', 5000)}},
		// W4: PERF of any content.
		{"perf not json", ProxyToClient, Limits{}, hx("5B 00 01 00"), &Perf{JSON: []byte{0}}},
		// W9: RX up to L = 65535; W5 latency ignored.
		{"rx L 65535", ProxyToClient, Limits{}, frame(CodeRxPayload, payloadBody(0), big), &RxPayload{Payload: big}},
		{"rx latency ignored", ProxyToClient, Limits{}, frame(CodeRxPayload, hx("00000002 FFFFFFFF 0000000000000009")),
			&RxPayload{Flags: event.EOM, TimeUS: 9}},
		{"rx rideshare no payload", ProxyToClient, Limits{}, frame(CodeRxPayload, payloadBody(0x20), hx("02 61 62")),
			&RxPayload{Flags: event.RideshareFlag, Rideshare: "ab"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg, n, err := Parse(tc.dir, tc.in, tc.lim)
			if err != nil || n != len(tc.in) || !reflect.DeepEqual(msg, tc.want) {
				t.Fatalf("Parse = %#v, %d, %v\nwant %#v, %d", msg, n, err, tc.want, len(tc.in))
			}
			for _, borrow := range []bool{false, true} {
				got, err := decodeAll(tc.dir, tc.in, tc.lim, borrow, iotest.HalfReader)
				if err != io.EOF || len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
					t.Fatalf("Decoder(borrow %v) = %v, %v", borrow, got, err)
				}
			}
			// Truncated at every position.
			for i := 1; i < len(tc.in); i += step(len(tc.in)) {
				if m, n, err := Parse(tc.dir, tc.in[:i], tc.lim); m != nil || n != 0 || err != nil {
					t.Fatalf("Parse(prefix %d) = %v, %d, %v; want need-more", i, m, n, err)
				}
				_, err := decodeAll(tc.dir, tc.in[:i], tc.lim, false, nil)
				var fe *FrameError
				if !errors.Is(err, ErrTruncated) || !errors.As(err, &fe) || fe.Code != CodeOf(tc.in) {
					t.Fatalf("Decoder(prefix %d) err = %v, want truncated", i, err)
				}
			}
		})
	}
}

// step keeps per-position loops over 64 KiB frames fast.
func step(n int) int {
	if n > 4096 {
		return 997
	}
	return 1
}

func TestDecodeMalformed(t *testing.T) {
	st := func(ver byte, name []byte) []byte {
		return frame(CodeStreamType, []byte{ver, 0, 0, 0, 1, 0x1D, 0xCD, 0x65, 0}, name)
	}
	type tcase struct {
		name  string
		dir   Direction
		lim   Limits
		in    []byte
		class error
		field int
	}
	tests := []tcase{
		// §8 proxy closes on:
		{"unknown 00", ClientToProxy, Limits{}, hx("00 00 00"), ErrUnknownCode, 0},
		{"unknown FF", ClientToProxy, Limits{}, hx("FF FF FF"), ErrUnknownCode, 0},
		{"mux code F5", ClientToProxy, Limits{}, hx("F5 FF 00 03"), ErrUnknownCode, 0},
		{"reserved 5A", ClientToProxy, Limits{}, hx("5A 00 00"), ErrReserved, 0},
		{"reserved B2", ClientToProxy, Limits{}, hx("B2 00 00"), ErrReserved, 0},
		{"reserved B3", ClientToProxy, Limits{}, hx("B3 00 00"), ErrReserved, 0},
		{"streamtype version 2", ClientToProxy, Limits{}, st(2, []byte("a")), ErrVersion, 3},
		{"streamtype SSSv0", ClientToProxy, Limits{}, frame(CodeStreamType, hx("1DCD6500"), []byte("mintest")), ErrVersion, 3},
		{"streamtype L 9", ClientToProxy, Limits{}, st(1, nil), ErrLength, 1},
		{"streamtype L 6", ClientToProxy, Limits{}, hx("AA 00 06 01 00 00 00 00 00"), ErrLength, 1},
		{"streamtype name 32", ClientToProxy, Limits{}, st(1, rep('a', 32)), ErrLength, 1},
		{"streamtype L 0", ClientToProxy, Limits{}, hx("AA 00 00"), ErrLength, 1},
		{"onward connect L 1", ClientToProxy, Limits{}, hx("AB 00 01 00"), ErrLength, 1},
		{"destroying L 1", ClientToProxy, Limits{}, hx("AC 00 01 00"), ErrLength, 1},
		{"txcr L 3", ClientToProxy, Limits{}, hx("AF 00 03 00 00 00"), ErrLength, 1},
		{"txcr L 5", ClientToProxy, Limits{}, hx("AF 00 05 00 00 00 00 00"), ErrLength, 1},
		{"timeout L 0", ClientToProxy, Limits{}, hx("B0 00 00"), ErrLength, 1},
		{"length hint L 8", ClientToProxy, Limits{}, hx("B1 00 08 00 00 00 00 00 00 00 00"), ErrLength, 1},
		{"metadata L 0", ClientToProxy, Limits{}, hx("AE 00 00"), ErrLength, 1},
		{"metadata L 1", ClientToProxy, Limits{}, hx("AE 00 01 01"), ErrLength, 1},
		{"metadata k 0", ClientToProxy, Limits{}, hx("AE 00 02 00 61"), ErrField, 3},
		{"metadata k 31", ClientToProxy, Limits{}, frame(CodeTxMetadata, []byte{31}, rep('k', 31), []byte("v")), ErrField, 3},
		{"metadata k > L-1", ClientToProxy, Limits{}, hx("AE 00 03 03 61 62"), ErrField, 3},
		{"metadata value over limit", ClientToProxy, Limits{MaxMetadataValue: 2}, hx("AE 00 05 01 61 62 63 64"), ErrTooLarge, 5},
		{"metadata L over limit", ClientToProxy, Limits{MaxMetadataValue: 2}, frame(CodeTxMetadata, []byte{1}, rep('v', 40)), ErrTooLarge, 1},
		{"tx L 15", ClientToProxy, Limits{}, frame(CodeTxPayload, rep(0, 15)), ErrLength, 1},
		{"tx L 0", ClientToProxy, Limits{}, hx("AD 00 00"), ErrLength, 1},
		{"tx rideshare no length", ClientToProxy, Limits{}, frame(CodeTxPayload, payloadBody(0x20)), ErrField, 19},
		{"tx rideshare r 0", ClientToProxy, Limits{}, frame(CodeTxPayload, payloadBody(0x20), hx("00 61")), ErrField, 19},
		{"tx rideshare r 32", ClientToProxy, Limits{}, frame(CodeTxPayload, payloadBody(0x20), []byte{32}, rep('r', 32)), ErrField, 19},
		{"tx rideshare overruns", ClientToProxy, Limits{}, frame(CodeTxPayload, payloadBody(0x20), hx("03 61 62")), ErrField, 19},
		{"tx payload over proxy_buflen", ClientToProxy, Limits{}, frame(CodeTxPayload, payloadBody(0), rep('p', DefaultProxyBuflen+1)), ErrTooLarge, 19},
		{"tx payload over limit (body)", ClientToProxy, Limits{MaxTxPayload: 10}, frame(CodeTxPayload, payloadBody(0), rep('p', 11)), ErrTooLarge, 19},
		{"tx payload over limit (header)", ClientToProxy, Limits{MaxTxPayload: 10},
			frame(CodeTxPayload, payloadBody(0), rep('p', 10+1+MaxRideshareName+1)), ErrTooLarge, 1},
		{"tx rideshare payload over limit", ClientToProxy, Limits{MaxTxPayload: 1},
			frame(CodeTxPayload, payloadBody(0x20), hx("01 61"), []byte("pp")), ErrTooLarge, 21},
	}
	for c := 0x55; c <= 0x59; c++ {
		tests = append(tests, tcase{"proxy code from client " + Code(c).String(), ClientToProxy, Limits{},
			[]byte{byte(c), 0, 0}, ErrWrongDirection, 0})
	}
	for _, c := range []Code{CodeStreamType, CodeOnwardConnect, CodeDestroying, CodeTxPayload, CodeTxMetadata,
		CodeTimeoutUpdate, CodePayloadLengthHint} {
		tests = append(tests, tcase{"client code from proxy " + c.String(), ProxyToClient, Limits{},
			[]byte{byte(c), 0, 4, 0, 0, 0, 0}, ErrWrongDirection, 0})
	}
	tests = append(tests, []tcase{
		// §8 client closes on:
		{"p2c unknown", ProxyToClient, Limits{}, hx("01 00 00"), ErrUnknownCode, 0},
		{"p2c reserved 5A", ProxyToClient, Limits{}, hx("5A 00 00"), ErrReserved, 0},
		{"p2c reserved B3", ProxyToClient, Limits{}, hx("B3 00 00"), ErrReserved, 0},
		{"create result L 0", ProxyToClient, Limits{}, hx("56 00 00"), ErrLength, 1},
		{"create result ok L 4", ProxyToClient, Limits{}, hx("56 00 04 00 00 00 00"), ErrLength, 1},
		{"create result ok L 1", ProxyToClient, Limits{}, hx("56 00 01 00"), ErrLength, 1},
		{"create result 17 names", ProxyToClient, Limits{},
			frame(CodeCreateResult, hx("00 00000000"), bytes.Repeat([]byte(",n"), MaxDecodedRideshares+1)), ErrTooLarge, 8},
		{"connstate L 4", ProxyToClient, Limits{}, hx("57 00 04 00 00 00 00"), ErrLength, 1},
		{"connstate L 9", ProxyToClient, Limits{}, hx("57 00 09 00 00 00 00 00 00 00 00 00"), ErrLength, 1},
		{"connstate L 0", ProxyToClient, Limits{}, hx("57 00 00"), ErrLength, 1},
		{"rx credit L 3", ProxyToClient, Limits{}, hx("58 00 03 00 00 00"), ErrLength, 1},
		{"0xAF credit L 5", ProxyToClient, Limits{}, hx("AF 00 05 00 00 00 00 00"), ErrLength, 1},
		{"perf L 0", ProxyToClient, Limits{}, hx("5B 00 00"), ErrLength, 1},
		{"rx L 15", ProxyToClient, Limits{}, frame(CodeRxPayload, rep(0, 15)), ErrLength, 1},
		{"rx rideshare r 0", ProxyToClient, Limits{}, frame(CodeRxPayload, payloadBody(0x23), hx("00")), ErrField, 19},
		{"rx rideshare r 32", ProxyToClient, Limits{}, frame(CodeRxPayload, payloadBody(0x20), []byte{32}, rep('r', 40)), ErrField, 19},
		{"rx rideshare overruns", ProxyToClient, Limits{}, frame(CodeRxPayload, payloadBody(0x20), hx("1F 61")), ErrField, 19},
		{"rx rideshare no length", ProxyToClient, Limits{}, frame(CodeRxPayload, payloadBody(0x20)), ErrField, 19},
		{"rx payload over limit", ProxyToClient, Limits{MaxRxPayload: 4}, frame(CodeRxPayload, payloadBody(0), rep('p', 5)), ErrTooLarge, 19},
		{"rx metadata k 0", ProxyToClient, Limits{}, hx("59 00 02 00 61"), ErrField, 3},
		{"rx metadata k 31", ProxyToClient, Limits{}, frame(CodeRxMetadata, []byte{31}, rep('k', 31)), ErrField, 3},
		{"rx metadata k > L-1", ProxyToClient, Limits{}, hx("59 00 02 02 61"), ErrField, 3},
		{"rx metadata L 1", ProxyToClient, Limits{}, hx("59 00 01 01"), ErrLength, 1},
	}...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check := func(how string, err error, off int64) {
				t.Helper()
				var fe *FrameError
				if !errors.As(err, &fe) || !errors.Is(err, tc.class) {
					t.Fatalf("%s: err = %v, want %v", how, err, tc.class)
				}
				if fe.Code != CodeOf(tc.in) || fe.Dir != tc.dir || fe.Offset != off || fe.Field != tc.field {
					t.Fatalf("%s: %#v, want code %v offset %d field %d", how, fe, CodeOf(tc.in), off, tc.field)
				}
				if fe.Error() == "" || !strings.Contains(fe.Error(), fe.Code.String()) {
					t.Fatalf("%s: message %q", how, fe.Error())
				}
			}
			m, n, err := Parse(tc.dir, tc.in, tc.lim)
			if m != nil || n != 0 {
				t.Fatalf("Parse = %v, %d", m, n)
			}
			check("Parse", err, 0)
			// Header errors are reported with only the header present.
			if tc.field <= 1 && CodeOf(tc.in) != CodeCreateResult { // CREATE_RESULT needs its result byte
				_, _, err := Parse(tc.dir, tc.in[:HeaderLen], tc.lim)
				check("Parse(header)", err, 0)
			}
			// The decoder reports the stream offset of the bad frame,
			// here behind a valid frame, and whatever the read sizes.
			good := hx("AB 00 00")
			if tc.dir == ProxyToClient {
				good = hx("57 00 05 05 00 00 00 00")
			}
			for _, borrow := range []bool{false, true} {
				for _, wrap := range []func(io.Reader) io.Reader{nil, iotest.OneByteReader} {
					got, err := decodeAll(tc.dir, cat(good, tc.in, good), tc.lim, borrow, wrap)
					if len(got) != 1 {
						t.Fatalf("decoded %v before the error", got)
					}
					check("Decoder", err, int64(len(good)))
				}
			}
		})
	}
}

// TestSplits feeds both golden streams split at every position, and at every
// pair of positions, to Parse (accumulating) and to the Decoder.
func TestSplits(t *testing.T) {
	for _, tc := range []struct {
		dir Direction
		hex string
	}{{ClientToProxy, goldenClientStream}, {ProxyToClient, goldenProxyStream}} {
		stream := hx(tc.hex)
		want := goldenStreamMsgs(tc.dir)
		for i := 0; i <= len(stream); i++ {
			for j := i; j <= len(stream); j++ {
				got := pushParse(t, tc.dir, [][]byte{stream[:i], stream[i:j], stream[j:]})
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("split %d,%d: %v", i, j, got)
				}
			}
			r := &chunkReader{data: stream, sizes: []int{i, len(stream)}}
			got, err := decodeAll(tc.dir, nil, Limits{}, i%2 == 0, func(io.Reader) io.Reader { return r })
			if err != io.EOF || !reflect.DeepEqual(got, want) {
				t.Fatalf("decoder split %d: %v, %v", i, got, err)
			}
		}
		for _, wrap := range []func(io.Reader) io.Reader{iotest.OneByteReader, iotest.HalfReader, iotest.DataErrReader} {
			got, err := decodeAll(tc.dir, stream, Limits{}, false, wrap)
			if err != io.EOF || !reflect.DeepEqual(got, want) {
				t.Fatalf("decoder: %v, %v", got, err)
			}
		}
	}
}

// pushParse accumulates pieces and parses as a push-style caller would.
func pushParse(t *testing.T, dir Direction, pieces [][]byte) []Message {
	t.Helper()
	var buf []byte
	var out []Message
	for _, p := range pieces {
		buf = append(buf, p...)
		for {
			m, n, err := Parse(dir, buf, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if m == nil {
				break
			}
			out = append(out, Clone(m))
			buf = buf[n:]
		}
	}
	if len(buf) != 0 {
		t.Fatalf("%d bytes left", len(buf))
	}
	return out
}

// chunkReader returns data in reads of the given sizes (then the rest).
type chunkReader struct {
	data  []byte
	sizes []int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.sizes) > 0 {
		n = r.sizes[0]
		r.sizes = r.sizes[1:]
	}
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// TestDecoderOwnership: owned payloads survive later reads; borrowed ones
// are reused.
func TestDecoderOwnership(t *testing.T) {
	small := (&RxPayload{Payload: []byte("first")}).mustEncode(t)
	small2 := (&RxPayload{Payload: []byte("secnd")}).mustEncode(t)
	large := (&RxPayload{Payload: rep('L', 20000)}).mustEncode(t)
	large2 := (&RxPayload{Payload: rep('M', 20000)}).mustEncode(t)
	stream := cat(small, small2, large, large2, small)

	d := NewDecoder(iotest.HalfReader(bytes.NewReader(stream)), ProxyToClient, Limits{})
	var kept [][]byte
	for range 5 {
		m, err := d.Next()
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, m.(*RxPayload).Payload)
	}
	wants := [][]byte{[]byte("first"), []byte("secnd"), rep('L', 20000), rep('M', 20000), []byte("first")}
	for i := range kept {
		if !bytes.Equal(kept[i], wants[i]) {
			t.Errorf("owned payload %d overwritten", i)
		}
	}
	if len(d.buf) > DefaultBufferSize {
		t.Errorf("owning decoder grew its buffer to %d", len(d.buf))
	}

	d = NewDecoder(bytes.NewReader(cat(small, small2)), ProxyToClient, Limits{})
	d.SetBorrow(true)
	m1, _ := d.Next()
	p1 := m1.(*RxPayload).Payload
	c1 := Clone(m1)
	m2, _ := d.Next()
	if m1 != m2 {
		t.Error("borrow mode did not reuse the message")
	}
	if !reflect.DeepEqual(c1, &RxPayload{Payload: []byte("first")}) || !bytes.Equal(p1, []byte("first")) && !bytes.Equal(p1, []byte("secnd")) {
		t.Errorf("clone %v, p1 %q", c1, p1)
	}
}

func (m *RxPayload) mustEncode(t *testing.T) []byte {
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eachMessage calls each with every message d decodes until io.EOF and
// fails the test on any other error.
func eachMessage(t *testing.T, d *Decoder, each func(Message)) {
	t.Helper()
	for {
		m, err := d.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		each(m)
	}
}

func TestDecoderBorrowNoAlloc(t *testing.T) {
	stream := cat(hx(goldenProxyStream))
	r := bytes.NewReader(stream)
	d := NewDecoder(r, ProxyToClient, Limits{})
	d.SetBorrow(true)
	n := 0
	allocs := testing.AllocsPerRun(100, func() {
		eachMessage(t, d, func(m Message) {
			if _, ok := m.(*CreateResult); !ok {
				n++
			}
		})
		r.Reset(stream)
		d.Reset(r)
	})
	// CREATE_RESULT allocates its names; nothing else may.
	if allocs > 2 {
		t.Errorf("%.1f allocations per stream", allocs)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestDecoderErrors(t *testing.T) {
	boom := errors.New("boom")
	d := NewDecoder(io.MultiReader(bytes.NewReader(hx("AB 00 00 AB")), errReader{boom}), ClientToProxy, Limits{})
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Next(); err != boom {
		t.Fatalf("err = %v, want the reader's error", err)
	}
	if _, err := d.Next(); err != boom {
		t.Fatalf("err not sticky: %v", err)
	}
	if d.Buffered() != 1 || d.Offset() != 3 {
		t.Fatalf("Buffered %d Offset %d", d.Buffered(), d.Offset())
	}
	d.Reset(bytes.NewReader(hx("B1 00 04 00 00 00 05")))
	if m, err := d.Next(); err != nil || !reflect.DeepEqual(m, &PayloadLengthHint{Length: 5}) {
		t.Fatalf("after Reset: %v, %v", m, err)
	}
	d = NewDecoder(zeroReader{}, ClientToProxy, Limits{})
	if _, err := d.Next(); err != io.ErrNoProgress {
		t.Fatalf("err = %v, want io.ErrNoProgress", err)
	}
	// Large frame cut short on the direct-read path.
	big := (&RxPayload{Payload: rep('x', 5000)}).mustEncode(t)
	_, err := decodeAll(ProxyToClient, big[:3000], Limits{}, false, iotest.HalfReader)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("err = %v", err)
	}
}

func TestSetLimits(t *testing.T) {
	tx := func(n int) []byte {
		b, _ := (&TxPayload{Payload: rep('p', n)}).AppendBinary(nil)
		return b
	}
	d := NewDecoder(bytes.NewReader(cat(hx("AA 00 0A 01 00 00 00 00 00 00 00 00 61"), tx(100), tx(101))), ClientToProxy, Limits{})
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	d.SetLimits(Limits{MaxTxPayload: 100})
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Next(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestLimitsClamp(t *testing.T) {
	l := Limits{MaxTxPayload: -5, MaxRxPayload: 1 << 30, MaxMetadataValue: 0}
	if l.maxTx() != DefaultProxyBuflen || l.maxRx() != MaxBody || l.maxMeta() != MaxBody {
		t.Fatal(l.maxTx(), l.maxRx(), l.maxMeta())
	}
}

func TestStrings(t *testing.T) {
	if CodeTxPayload.String() != "TX_PAYLOAD" || Code(0x01).String() != "0x01" || Code(0xFE).String() != "0xFE" {
		t.Error(CodeTxPayload, Code(1), Code(0xFE))
	}
	if ClientToProxy.String() != "client→proxy" || Direction(9).String() != "direction(9)" {
		t.Error(ClientToProxy, Direction(9))
	}
	enc := encodeError(CodePerf, ErrField, "x")
	if enc.Error() != "ss: proxy: encode PERF: x" {
		t.Error(enc)
	}
}

// TestSmallBuffer: with a 64-byte buffer, owning mode never grows it and
// borrow mode grows it for larger frames; both decode everything.
func TestSmallBuffer(t *testing.T) {
	var stream []byte
	for _, n := range []int{0, 40, 45, 46, 47, 100, 1000, 1023, 1024, 3000} {
		stream, _ = (&RxPayload{Payload: rep(byte(n), n)}).AppendBinary(stream)
	}
	stream = append(stream, hx(goldenProxyStream)...)
	want, err := decodeAll(ProxyToClient, stream, Limits{}, false, nil)
	if err != io.EOF || len(want) != 16 {
		t.Fatal(len(want), err)
	}
	for _, borrow := range []bool{false, true} {
		for _, wrap := range []func(io.Reader) io.Reader{nil, iotest.OneByteReader, iotest.HalfReader} {
			var r io.Reader = bytes.NewReader(stream)
			if wrap != nil {
				r = wrap(r)
			}
			d := NewDecoder(r, ProxyToClient, Limits{})
			d.SetBufferSize(1)
			d.SetBorrow(borrow)
			var got []Message
			for {
				m, err := d.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, Clone(m))
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("borrow %v: mismatch", borrow)
			}
			if !borrow && len(d.buf) != MinBufferSize {
				t.Fatalf("owning decoder buffer %d", len(d.buf))
			}
			d.Reset(bytes.NewReader(nil))
			if d.buf != nil && len(d.buf) != MinBufferSize {
				t.Fatalf("Reset kept a %d-byte buffer", len(d.buf))
			}
		}
	}
}

// TestDecoderBorrowReleasesLargeBuffer: in borrow mode a frame larger than
// the read buffer is read into a pooled buffer, intact, which goes back as
// soon as it is drained: a link that then waits for data holds only its
// small buffer.
func TestDecoderBorrowReleasesLargeBuffer(t *testing.T) {
	small := (&RxPayload{Payload: []byte("first")}).mustEncode(t)
	large := (&RxPayload{Payload: rep('L', 30000)}).mustEncode(t)
	pr, pw := io.Pipe()
	defer pr.Close()
	go func() {
		pw.Write(cat(small, large))
		pw.Write(small)
		pw.Close()
	}()
	d := NewDecoder(pr, ProxyToClient, Limits{})
	d.SetBorrow(true)
	d.SetBufferSize(1024)
	for i, want := range [][]byte{[]byte("first"), rep('L', 30000), []byte("first")} {
		m, err := d.Next()
		if err != nil {
			t.Fatal(err)
		}
		if p := m.(*RxPayload).Payload; !bytes.Equal(p, want) {
			t.Fatalf("frame %d: %d bytes, not the %d sent", i, len(p), len(want))
		}
		if i == 1 && len(d.buf) < 30000 {
			t.Fatalf("large frame decoded from a %d-byte buffer", len(d.buf))
		}
	}
	if len(d.buf) != 1024 || d.pooled {
		t.Errorf("after the large frame was drained the decoder holds %d bytes (pooled %v), want its 1024", len(d.buf), d.pooled)
	}
}

// TestDecoderBorrowLwsFramesNoAlloc: TX_PAYLOAD frames of an lws client's
// size (4061 B of payload, 4064 B in all: just under the smallest pooled
// buffer) each alternating with a small frame, as a link sees them, are
// decoded in borrow mode without allocating: the larger buffer comes from
// the pool and goes back every time.
func TestDecoderBorrowLwsFramesNoAlloc(t *testing.T) {
	var stream []byte
	for range 8 {
		b, err := (&TxPayload{Payload: rep('p', 4061)}).AppendBinary(stream)
		if err != nil {
			t.Fatal(err)
		}
		stream = b
	}
	r := bytes.NewReader(stream)
	d := NewDecoder(oneFrameReader{r}, ClientToProxy, Limits{})
	d.SetBorrow(true)
	d.SetBufferSize(1024)
	allocs := testing.AllocsPerRun(50, func() {
		eachMessage(t, d, func(m Message) {
			if p := m.(*TxPayload).Payload; len(p) != 4061 || p[4060] != 'p' {
				t.Fatalf("payload of %d bytes", len(p))
			}
		})
		r.Reset(stream)
		d.Reset(oneFrameReader{r})
	})
	// Without the pool it is 9; the race detector makes sync.Pool drop
	// about a quarter of what is put back, hence its allowance.
	limit := 1.0
	if testutil.RaceEnabled {
		limit = 5
	}
	if allocs > limit {
		t.Errorf("%.1f allocations per 8 frames of 4064 bytes, want at most %.0f (the buffer pooled)", allocs, limit)
	}
}

// oneFrameReader returns at most one lws-sized frame per Read, as a socket
// written frame by frame often does.
type oneFrameReader struct{ r io.Reader }

func (o oneFrameReader) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 4064)]) }

// wouldBlockReader is a non-blocking reader (the event loop's): what was
// fed, then evloop.ErrWouldBlock until more is fed.
type wouldBlockReader struct{ data []byte }

func (r *wouldBlockReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, evloop.ErrWouldBlock
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestDecoderBorrowIdleHoldsNothing: a borrowing Decoder on a non-blocking
// reader gives its read buffer and message structs back once it is drained
// (Next returns ErrWouldBlock between frames) and takes them again for the
// next frame; the bytes of a partial frame stay buffered across
// ErrWouldBlock; and a message it returned stays intact while other
// Decoders take pooled buffers, until its own next Next.
func TestDecoderBorrowIdleHoldsNothing(t *testing.T) {
	first := (&TxPayload{Flags: event.SOM | event.EOM, Payload: rep('a', 200)}).mustEncodeTx(t)
	second := (&TxPayload{Flags: event.SOM | event.EOM, Payload: rep('b', 200)}).mustEncodeTx(t)
	r := &wouldBlockReader{data: first}
	d := NewDecoder(r, ClientToProxy, Limits{})
	d.SetBorrow(true)
	d.SetBufferSize(1024)
	m, err := d.Next()
	if err != nil {
		t.Fatal(err)
	}
	held := m.(*TxPayload).Payload
	// Other links' decoders take buffers from the pool meanwhile: none
	// may be the one held.
	for range 50 {
		o := NewDecoder(&wouldBlockReader{data: second}, ClientToProxy, Limits{})
		o.SetBorrow(true)
		o.SetBufferSize(1024)
		if om, err := o.Next(); err != nil || !bytes.Equal(om.(*TxPayload).Payload, rep('b', 200)) {
			t.Fatalf("other decoder: %v, %v", om, err)
		}
		if _, err := o.Next(); err != evloop.ErrWouldBlock {
			t.Fatalf("other decoder drained: %v", err)
		}
	}
	if !bytes.Equal(held, rep('a', 200)) {
		t.Fatal("a borrowed payload changed before its decoder's next Next")
	}
	if _, err := d.Next(); err != evloop.ErrWouldBlock {
		t.Fatalf("drained: %v, want ErrWouldBlock", err)
	}
	if d.buf != nil || d.sc != nil || d.small != nil {
		t.Fatalf("idle decoder holds buf %d bytes, scratch %v, small %d bytes", len(d.buf), d.sc != nil, len(d.small))
	}
	// A frame arriving in two pieces: the first piece stays buffered.
	r.data = second[:50]
	if _, err := d.Next(); err != evloop.ErrWouldBlock {
		t.Fatalf("partial frame: %v, want ErrWouldBlock", err)
	}
	if d.Buffered() != 50 || d.buf == nil {
		t.Fatalf("partial frame: %d bytes buffered", d.Buffered())
	}
	r.data = second[50:]
	m, err = d.Next()
	if err != nil {
		t.Fatal(err)
	}
	if p := m.(*TxPayload).Payload; !bytes.Equal(p, rep('b', 200)) {
		t.Fatalf("frame across the wait: %q", p)
	}
	if _, err := d.Next(); err != evloop.ErrWouldBlock || d.buf != nil {
		t.Fatalf("drained again: %v, buffer %d bytes", err, len(d.buf))
	}
}

func (m *TxPayload) mustEncodeTx(t *testing.T) []byte {
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
