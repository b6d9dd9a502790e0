package proxy

import (
	"testing"

	"github.com/securestreams/ss/internal/event"
)

// loopReader repeats data forever, filling each read like a busy socket.
type loopReader struct {
	data []byte
	off  int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

var (
	rx16k = &RxPayload{Flags: event.SOM | event.EOM, TimeUS: 0x2DA7DCC8, Payload: make([]byte, 16384)}
	tx64  = &TxPayload{Flags: event.SOM | event.EOM, TimeUS: 0x2DA7DC18, Payload: make([]byte, 64)}
)

func benchEncode(b *testing.B, m Message, n int) {
	buf := make([]byte, 0, MaxFrame)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = m.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeRxPayload16K(b *testing.B) { benchEncode(b, rx16k, 16384) }
func BenchmarkEncodeTxPayload64(b *testing.B)  { benchEncode(b, tx64, 64) }

// BenchmarkEncodeRxPayload16KHeader is the writev path: header only.
func BenchmarkEncodeRxPayload16KHeader(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.SetBytes(16384)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = rx16k.AppendHeader(buf[:0])
	}
}

// BenchmarkEncodeBatch64 appends 64 TX frames of 64 B into one buffer, as a
// batching writer does.
func BenchmarkEncodeBatchTx64x64(b *testing.B) {
	buf := make([]byte, 0, 64*(64+19))
	b.SetBytes(64 * 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for range 64 {
			buf, _ = tx64.AppendBinary(buf)
		}
	}
}

func benchDecode(b *testing.B, dir Direction, m Message, n int, borrow bool) {
	frame, err := m.AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	d := NewDecoder(&loopReader{data: frame}, dir, Limits{MaxTxPayload: MaxBody})
	d.SetBorrow(borrow)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRxPayload16K(b *testing.B) {
	b.Run("own", func(b *testing.B) { benchDecode(b, ProxyToClient, rx16k, 16384, false) })
	b.Run("borrow", func(b *testing.B) { benchDecode(b, ProxyToClient, rx16k, 16384, true) })
}

func BenchmarkDecodeTxPayload64(b *testing.B) {
	b.Run("own", func(b *testing.B) { benchDecode(b, ClientToProxy, tx64, 64, false) })
	b.Run("borrow", func(b *testing.B) { benchDecode(b, ClientToProxy, tx64, 64, true) })
}

func benchParse(b *testing.B, dir Direction, m Message, n int) {
	frame, _ := m.AppendBinary(nil)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse(dir, frame, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRxPayload16K(b *testing.B) { benchParse(b, ProxyToClient, rx16k, 16384) }
func BenchmarkParseTxPayload64(b *testing.B)  { benchParse(b, ClientToProxy, tx64, 64) }
