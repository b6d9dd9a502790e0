package ws

import (
	"bytes"
	"net"
	"testing"
)

func TestFrameWriterLengths(t *testing.T) {
	for _, client := range []bool{false, true} {
		for _, n := range []int{0, 1, 125, 126, 127, 511, 512, 513, 65535, 65536, maxCopyChunk + 3, 3*maxCopyChunk + 1} {
			a, b := net.Pipe()
			w := newFrameWriter(a, client)
			data := bytes.Repeat([]byte{0x5a, 0x11, 0xe3}, n/3+1)[:n]
			errc := make(chan error, 1)
			go func() { errc <- w.writeData(opBinary, n%2 == 0, data) }()
			f, err := readFrame(b)
			if err != nil || <-errc != nil {
				t.Fatalf("client=%v n=%d: %v", client, n, err)
			}
			if f.masked != client || f.op != opBinary || f.fin != (n%2 == 0) || !bytes.Equal(f.payload, data) {
				t.Fatalf("client=%v n=%d: frame op %d fin %v masked %v len %d", client, n, f.op, f.fin, f.masked, len(f.payload))
			}
			a.Close()
			b.Close()
		}
	}
}

func FuzzMaskCopy(f *testing.F) {
	f.Add([]byte("hello, websocket masking"), uint32(0x01020304), 3)
	f.Fuzz(func(t *testing.T, src []byte, key uint32, pos int) {
		if pos < 0 {
			pos = -pos
		}
		k := [4]byte{byte(key), byte(key >> 8), byte(key >> 16), byte(key >> 24)}
		dst := make([]byte, len(src))
		maskCopy(dst, src, k, pos)
		for i := range src {
			if dst[i] != src[i]^k[(pos+i)&3] {
				t.Fatalf("byte %d: got %#x want %#x", i, dst[i], src[i]^k[(pos+i)&3])
			}
		}
	})
}
