package proxy

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/securestreams/ss/internal/event"
)

// hx decodes hex written with optional spaces.
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

type golden struct {
	name string
	dir  Direction
	hex  string
	msg  Message
}

// goldens are the vectors of docs/wire.md §10, byte for byte.
var goldens = []golden{
	{"STREAMTYPE mintest", ClientToProxy, "AA 00 10 01 00 00 12 34 1D CD 65 00 6D 69 6E 74 65 73 74",
		&StreamType{PID: 0x1234, Credit: DefaultCredit, Name: "mintest"}},
	{"PAYLOAD_LENGTH_HINT 5", ClientToProxy, "B1 00 04 00 00 00 05", &PayloadLengthHint{Length: 5}},
	{"ONWARD_CONNECT", ClientToProxy, "AB 00 00", &OnwardConnect{}},
	{"TX_PAYLOAD hello", ClientToProxy,
		"AD 00 15 00 00 00 03 00 00 00 00 00 00 00 00 2D A7 DC 18 68 65 6C 6C 6F",
		&TxPayload{Flags: event.SOM | event.EOM, TimeUS: 0x2DA7DC18, Payload: []byte("hello")}},
	{"CREATE_RESULT ok", ProxyToClient, "56 00 0D 00 00 00 00 00 2C 6D 69 6E 74 65 73 74",
		&CreateResult{Rideshares: []string{"mintest"}}},
	{"CONNSTATE CREATING", ProxyToClient, "57 00 05 01 00 00 00 00", &ConnState{State: event.Creating}},
	{"CONNSTATE POLL", ProxyToClient, "57 00 05 08 00 00 00 00", &ConnState{State: event.Poll}},
	{"CONNSTATE CONNECTING", ProxyToClient, "57 00 05 06 00 00 00 00", &ConnState{State: event.Connecting}},
	{"CONNSTATE CONNECTED", ProxyToClient, "57 00 05 05 00 00 00 00", &ConnState{State: event.Connected}},
	{"RX_PAYLOAD world raw", ProxyToClient,
		"55 00 15 00 00 00 00 00 00 00 00 00 00 00 00 2D A7 DC C8 77 6F 72 6C 64",
		&RxPayload{TimeUS: 0x2DA7DCC8, Payload: []byte("world")}},
	{"RX_PAYLOAD world ws", ProxyToClient,
		"55 00 15 00 00 00 03 00 00 00 00 00 00 00 00 2D A7 DC C8 77 6F 72 6C 64",
		&RxPayload{Flags: event.SOM | event.EOM, TimeUS: 0x2DA7DCC8, Payload: []byte("world")}},
	{"CREATE_RESULT failed", ProxyToClient, "56 00 05 01 00 00 00 00", &CreateResult{Result: ResultFailed}},
	{"CREATE_RESULT bufd chain", ProxyToClient,
		"56 00 12 00 00 00 10 00 2C 62 75 66 64 2C 6D 69 6E 74 65 73 74",
		&CreateResult{ClientBuflen: 4096, Rideshares: []string{"bufd", "mintest"}}},
	{"METADATA ctype", ClientToProxy, "AE 00 10 05 63 74 79 70 65 74 65 78 74 2F 70 6C 61 69 6E",
		&TxMetadata{Name: "ctype", Value: []byte("text/plain")}},
	{"TIMEOUT_UPDATE 5000", ClientToProxy, "B0 00 04 00 00 13 88", &TimeoutUpdate{Millis: 5000}},
	{"TIMEOUT_UPDATE cancel", ClientToProxy, "B0 00 04 FF FF FF FF", &TimeoutUpdate{Millis: TimeoutCancel}},
	{"TXCR_UPDATE +4096", ClientToProxy, "AF 00 04 00 00 10 00", &TxCredit{Delta: 4096}},
	{"CONNSTATE user 1530", ProxyToClient, "57 00 08 00 00 05 FA 00 00 00 00", &ConnState{State: 1530}},
	{"CONNSTATE QOS_ACK_REMOTE", ProxyToClient, "57 00 05 0A 00 00 00 00", &ConnState{State: event.QoSAckRemote}},
	{"CONNSTATE DISCONNECTED", ProxyToClient, "57 00 05 02 00 00 00 00", &ConnState{State: event.Disconnected}},
	{"RX_PAYLOAD rideshare bufd", ProxyToClient,
		"55 00 17 00 00 00 23 00 00 00 00 00 00 00 00 00 00 00 01 04 62 75 66 64 68 69",
		&RxPayload{Flags: event.SOM | event.EOM | event.RideshareFlag, TimeUS: 1, Rideshare: "bufd",
			Payload: []byte("hi")}},
	{"PERF lws v4.4+", ProxyToClient, "5B 00 05 7B 22 70 65 65", &Perf{JSON: []byte(`{"pee`)}},
}

// The whole byte streams of §10.
const (
	goldenClientStream = "aa001001000012341dcd65006d696e74657374b1000400000005ab0000ad00150000000300000000000000002da7dc1868656c6c6f"
	goldenProxyStream  = "56000d00000000002c6d696e7465737457000501000000005700050800000000570005060000000057000505000000005500150000000000000000000000002da7dcc8776f726c64"
)

func goldenStreamMsgs(dir Direction) []Message {
	names := []string{"STREAMTYPE mintest", "PAYLOAD_LENGTH_HINT 5", "ONWARD_CONNECT", "TX_PAYLOAD hello"}
	if dir == ProxyToClient {
		names = []string{"CREATE_RESULT ok", "CONNSTATE CREATING", "CONNSTATE POLL", "CONNSTATE CONNECTING",
			"CONNSTATE CONNECTED", "RX_PAYLOAD world raw"}
	}
	var out []Message
	for _, n := range names {
		for _, g := range goldens {
			if g.name == n {
				out = append(out, g.msg)
			}
		}
	}
	return out
}

func TestGoldenEncode(t *testing.T) {
	for _, g := range goldens {
		got, err := g.msg.AppendBinary(nil)
		if err != nil {
			t.Errorf("%s: encode: %v", g.name, err)
			continue
		}
		if want := hx(g.hex); !bytes.Equal(got, want) {
			t.Errorf("%s: encode\n got % X\nwant % X", g.name, got, want)
		}
	}
}

func TestGoldenDecode(t *testing.T) {
	for _, g := range goldens {
		b := hx(g.hex)
		msg, n, err := Parse(g.dir, b, Limits{})
		if err != nil || n != len(b) || !reflect.DeepEqual(msg, g.msg) {
			t.Errorf("%s: Parse = %#v, %d, %v; want %#v, %d", g.name, msg, n, err, g.msg, len(b))
		}
		for _, borrow := range []bool{false, true} {
			d := NewDecoder(bytes.NewReader(b), g.dir, Limits{})
			d.SetBorrow(borrow)
			msg, err := d.Next()
			if err != nil || !reflect.DeepEqual(msg, g.msg) {
				t.Errorf("%s (borrow %v): Next = %#v, %v; want %#v", g.name, borrow, msg, err, g.msg)
			}
			if _, err := d.Next(); err != io.EOF {
				t.Errorf("%s: second Next err = %v, want io.EOF", g.name, err)
			}
		}
	}
}

func TestGoldenStreams(t *testing.T) {
	for _, tc := range []struct {
		dir Direction
		hex string
	}{{ClientToProxy, goldenClientStream}, {ProxyToClient, goldenProxyStream}} {
		want := goldenStreamMsgs(tc.dir)
		stream := hx(tc.hex)
		// Encode: one batched buffer.
		var enc []byte
		for _, m := range want {
			var err error
			if enc, err = m.AppendBinary(enc); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(enc, stream) {
			t.Errorf("%v: encoded stream\n got %x\nwant %s", tc.dir, enc, tc.hex)
		}
		// Decode.
		got, err := decodeAll(tc.dir, stream, Limits{}, false, nil)
		if err != io.EOF || !reflect.DeepEqual(got, want) {
			t.Errorf("%v: decoded %v, %v; want %v", tc.dir, got, err, want)
		}
	}
	if n := len(hx(goldenClientStream)); n != 53 {
		t.Errorf("client stream is %d bytes, spec says 53", n)
	}
	if n := len(hx(goldenProxyStream)); n != 72 {
		t.Errorf("proxy stream is %d bytes, spec says 72", n)
	}
}

// TestGoldenMux checks the SSSv1 bytes carried in the mux exchange of
// Appendix A (PID 0x55, other timestamps).
func TestGoldenMux(t *testing.T) {
	for _, tc := range []struct {
		dir Direction
		hex string
		msg Message
	}{
		{ClientToProxy, "AA 00 10 01 00 00 00 55 1D CD 65 00 6D 69 6E 74 65 73 74",
			&StreamType{PID: 0x55, Credit: DefaultCredit, Name: "mintest"}},
		{ClientToProxy, "AD 00 15 00 00 00 03 00 00 00 00 00 00 00 00 2D AB 9A 80 68 65 6C 6C 6F",
			&TxPayload{Flags: event.SOM | event.EOM, TimeUS: 0x2DAB9A80, Payload: []byte("hello")}},
		{ProxyToClient, "55 00 15 00 00 00 00 00 00 00 00 00 00 00 00 2D AB 9B 36 77 6F 72 6C 64",
			&RxPayload{TimeUS: 0x2DAB9B36, Payload: []byte("world")}},
	} {
		b := hx(tc.hex)
		msg, _, err := Parse(tc.dir, b, Limits{})
		if err != nil || !reflect.DeepEqual(msg, tc.msg) {
			t.Errorf("Parse(% X) = %#v, %v", b, msg, err)
		}
		enc, _ := tc.msg.AppendBinary(nil)
		if !bytes.Equal(enc, b) {
			t.Errorf("encode %#v = % X, want % X", tc.msg, enc, b)
		}
	}
}

// decodeAll runs a Decoder over data, read through wrap (nil: whole), and
// returns every message (cloned) and the final error.
func decodeAll(dir Direction, data []byte, lim Limits, borrow bool, wrap func(io.Reader) io.Reader) ([]Message, error) {
	var r io.Reader = bytes.NewReader(data)
	if wrap != nil {
		r = wrap(r)
	}
	d := NewDecoder(r, dir, lim)
	d.SetBorrow(borrow)
	var out []Message
	for {
		m, err := d.Next()
		if err != nil {
			if m2, _ := d.Next(); m2 != nil {
				panic("message after error")
			}
			if _, err2 := d.Next(); !errors.Is(err2, err) && err2 != err {
				panic("error not sticky")
			}
			return out, err
		}
		if borrow {
			m = Clone(m)
		}
		out = append(out, m)
	}
}
