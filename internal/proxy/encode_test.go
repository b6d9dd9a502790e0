package proxy

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/securestreams/ss/internal/event"
)

func TestEncodeErrors(t *testing.T) {
	long := strings.Repeat("x", 32)
	tests := []struct {
		name  string
		msg   Message
		class error
	}{
		{"streamtype empty", &StreamType{}, ErrField},
		{"streamtype 32", &StreamType{Name: long}, ErrField},
		{"tx rideshare 32", &TxPayload{Rideshare: long}, ErrField},
		{"rx rideshare 32", &RxPayload{Rideshare: long}, ErrField},
		{"tx too large", &TxPayload{Payload: make([]byte, MaxPayload+1)}, ErrTooLarge},
		{"rx too large", &RxPayload{Payload: make([]byte, MaxPayload+1)}, ErrTooLarge},
		{"rx rideshare too large", &RxPayload{Rideshare: "a", Payload: make([]byte, MaxPayload-1)}, ErrTooLarge},
		{"tx metadata k 0", &TxMetadata{Value: []byte("v")}, ErrField},
		{"tx metadata k 31", &TxMetadata{Name: long[:31], Value: []byte("v")}, ErrField},
		{"tx metadata empty value", &TxMetadata{Name: "a"}, ErrField},
		{"tx metadata too large", &TxMetadata{Name: "a", Value: make([]byte, MaxBody-1)}, ErrTooLarge},
		{"rx metadata empty value", &RxMetadata{Name: "a"}, ErrField},
		{"rx metadata 1581", &RxMetadata{Name: "a", Value: make([]byte, MaxProxyMetadataFrame-4)}, ErrTooLarge},
		{"create result 4 names", &CreateResult{Rideshares: []string{"a", "b", "c", "d"}}, ErrTooLarge},
		{"create result list 128", &CreateResult{Rideshares: []string{strings.Repeat("a", 63), strings.Repeat("b", 63)}}, ErrTooLarge},
		{"create result empty name", &CreateResult{Rideshares: []string{""}}, ErrField},
		{"create result comma", &CreateResult{Rideshares: []string{"a,b"}}, ErrField},
		{"create result failed with list", &CreateResult{Result: ResultFailed, Rideshares: []string{"a"}}, ErrField},
		{"perf empty", &Perf{}, ErrField},
		{"perf too large", &Perf{JSON: make([]byte, MaxBody+1)}, ErrTooLarge},
	}
	for _, tc := range tests {
		prefix := []byte("keep")
		b, err := tc.msg.AppendBinary(prefix)
		var fe *FrameError
		if !errors.Is(err, tc.class) || !errors.As(err, &fe) || fe.Code != tc.msg.Code() || fe.Offset != -1 {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.class)
		}
		if !bytes.Equal(b, prefix) {
			t.Errorf("%s: appended on error: %q", tc.name, b)
		}
	}
}

func TestEncodeBoundaries(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
		l    int
	}{
		{"streamtype 31", &StreamType{Name: strings.Repeat("n", 31)}, 40},
		{"tx max payload", &TxPayload{Payload: make([]byte, MaxPayload)}, MaxBody},
		{"rx max payload with rideshare", &RxPayload{Rideshare: strings.Repeat("r", 31), Payload: make([]byte, MaxPayload-32)}, MaxBody},
		{"tx metadata k 30", &TxMetadata{Name: strings.Repeat("k", 30), Value: []byte("v")}, 32},
		{"tx metadata max", &TxMetadata{Name: "a", Value: make([]byte, MaxBody-2)}, MaxBody},
		{"rx metadata 1580", &RxMetadata{Name: "a", Value: make([]byte, MaxProxyMetadataFrame-5)}, MaxProxyMetadataFrame - 3},
		{"create result 3 names 127 bytes", &CreateResult{Rideshares: []string{strings.Repeat("a", 60), strings.Repeat("b", 60), "cccc"}}, 5 + 127},
		{"connstate 255", &ConnState{State: 255}, 5},
		{"connstate 256", &ConnState{State: 256}, 8},
		{"perf max", &Perf{JSON: make([]byte, MaxBody)}, MaxBody},
	}
	for _, tc := range tests {
		b, err := tc.msg.AppendBinary(nil)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if l := int(b[1])<<8 | int(b[2]); l != tc.l || len(b) != 3+l || Code(b[0]) != tc.msg.Code() {
			t.Errorf("%s: L = %d, len %d, want L %d", tc.name, l, len(b), tc.l)
		}
	}
}

// TestEncodeFlags: RIDESHARE follows the name; bits outside WireFlags are
// never sent.
func TestEncodeFlags(t *testing.T) {
	b, _ := (&TxPayload{Flags: event.RideshareFlag | event.PerfJSON | 0x80000001}).AppendBinary(nil)
	if !bytes.Equal(b[3:7], []byte{0, 0, 0, 1}) {
		t.Errorf("flags % X", b[3:7])
	}
	b, _ = (&RxPayload{Rideshare: "a"}).AppendBinary(nil)
	if !bytes.Equal(b, hx("55 00 12 00000020 00000000 0000000000000000 01 61")) {
		t.Errorf("rideshare frame % X", b)
	}
	h, _ := (&RxPayload{Rideshare: "a", Payload: []byte("xyz")}).AppendHeader(nil)
	if !bytes.Equal(h, hx("55 00 15 00000020 00000000 0000000000000000 01 61")) {
		t.Errorf("header % X", h)
	}
	h, _ = (&TxPayload{DelayUS: 7, Payload: []byte("xyz")}).AppendHeader(nil)
	if !bytes.Equal(h, hx("AD 00 13 00000000 00000007 0000000000000000")) {
		t.Errorf("header % X", h)
	}
}

func TestEncodeNoAlloc(t *testing.T) {
	buf := make([]byte, 0, MaxFrame)
	payload := make([]byte, 16384)
	msgs := []Message{
		&StreamType{Name: "mintest"}, &OnwardConnect{}, &Destroying{}, &TxPayload{Payload: payload},
		&TxMetadata{Name: "a", Value: []byte("b")}, &TxCredit{}, &TimeoutUpdate{}, &PayloadLengthHint{},
		&CreateResult{Rideshares: []string{"a", "b"}}, &ConnState{State: 1000}, &RxCredit{},
		&RxMetadata{Name: "a", Value: []byte("b")}, &RxPayload{Rideshare: "r", Payload: payload}, &Perf{JSON: []byte("{}")},
	}
	for _, m := range msgs {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := m.AppendBinary(buf[:0]); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: %.1f allocs", m.Code(), allocs)
		}
	}
	// Concrete values on the stack do not escape either.
	allocs := testing.AllocsPerRun(100, func() {
		rx := RxPayload{Flags: event.SOM, Payload: payload}
		buf, _ = rx.AppendBinary(buf[:0])
		tx := TxPayload{Flags: event.SOM, Payload: payload[:64]}
		buf, _ = tx.AppendBinary(buf)
	})
	if allocs != 0 {
		t.Errorf("stack values: %.1f allocs", allocs)
	}
}

func TestFitRideshares(t *testing.T) {
	fit, dropped := FitRideshares([]string{"a", "", "b,c", strings.Repeat("x", 130), "d", "e", "f"})
	if !reflect.DeepEqual(fit, []string{"a", "d", "e"}) ||
		!reflect.DeepEqual(dropped, []string{"", "b,c", strings.Repeat("x", 130), "f"}) {
		t.Errorf("fit %q dropped %q", fit, dropped)
	}
	if _, err := (&CreateResult{Rideshares: fit}).AppendBinary(nil); err != nil {
		t.Error(err)
	}
}

// TestRoundTrip encodes one of every message with every field set, decodes
// it in its direction (Parse and both Decoder modes) and compares.
func TestRoundTrip(t *testing.T) {
	c2p := []Message{
		&StreamType{PID: 1, Credit: -7, Name: "st"},
		&OnwardConnect{}, &Destroying{},
		&TxPayload{Flags: event.SOM | event.RelatedStart | event.RideshareFlag, DelayUS: 3, TimeUS: 1 << 60, Rideshare: "rs", Payload: []byte("p")},
		&TxMetadata{Name: "n", Value: []byte("v")},
		&TxCredit{Delta: -9}, &TimeoutUpdate{Millis: 1}, &PayloadLengthHint{Length: 2},
		&Perf{JSON: []byte("x")},
	}
	p2c := []Message{
		&CreateResult{ClientBuflen: 5, Rideshares: []string{"a", "b", "c"}},
		&CreateResult{Result: ResultFailed},
		&ConnState{State: event.QoSNackRemote, Ack: 77}, &ConnState{State: 70000, Ack: 1},
		&RxCredit{Delta: 1 << 30}, &RxMetadata{Name: "n", Value: []byte("v")},
		&RxPayload{Flags: event.EOM | event.PollFlag | event.RelatedEnd, TimeUS: 5, Payload: []byte("q")},
		&Perf{JSON: []byte(`{"a":1}`)},
	}
	for _, set := range []struct {
		dir  Direction
		msgs []Message
	}{{ClientToProxy, c2p}, {ProxyToClient, p2c}} {
		var stream []byte
		for _, m := range set.msgs {
			var err error
			if stream, err = m.AppendBinary(stream); err != nil {
				t.Fatal(err)
			}
		}
		for _, borrow := range []bool{false, true} {
			got, err := decodeAll(set.dir, stream, Limits{}, borrow, nil)
			if err == nil || !reflect.DeepEqual(got, set.msgs) {
				t.Errorf("%v: %v, %v", set.dir, got, err)
			}
		}
	}
}

func TestAppendAtomic(t *testing.T) {
	b, err := Append([]byte("x"), &OnwardConnect{}, &StreamType{}, &OnwardConnect{})
	if !errors.Is(err, ErrField) || string(b) != "x" {
		t.Errorf("Append = %q, %v", b, err)
	}
}

func TestNoDirection(t *testing.T) {
	for _, in := range [][]byte{hx("5B 00 01 00"), hx("AB 00 00"), hx("57 00 05 05 00 00 00 00")} {
		if _, _, err := Parse(0, in, Limits{}); !errors.Is(err, ErrUnknownCode) {
			t.Errorf("Parse(no direction, % X) err = %v", in, err)
		}
	}
}
