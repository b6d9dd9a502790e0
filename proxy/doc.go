// Package proxy implements the Secure Streams proxy: the SSSv1 wire codec
// (this file's neighbours wire.go, encode.go, decode.go), and, later, the
// proxy server and the proxied-client transport built on it.
//
// # Wire codec
//
// SSSv1 (spec/wire.md) frames are a one-byte message code, a big-endian u16
// body length L and L body bytes. Each message has a Go type implementing
// [Message]. Types named Tx… and the STREAMTYPE, ONWARD_CONNECT, DESTROYING,
// TIMEOUT_UPDATE and PAYLOAD_LENGTH_HINT messages travel client → proxy; types
// named Rx…, [CreateResult] and [ConnState] travel proxy → client; [Perf] is
// sent by the proxy and tolerated from a client.
//
// Encoding appends a whole frame to a caller-supplied slice
// ([Message.AppendBinary], or [Append] for several); with enough capacity it
// does not allocate, so a writer can batch many frames into one buffer and
// write it at once. Encoders refuse (appending nothing) what the spec says a
// sender must never send: names outside their length limits, empty metadata
// values, oversized CREATE_RESULT lists, an empty PERF report. For large
// payloads, [RxPayload.AppendHeader] and [TxPayload.AppendHeader] append only
// the frame header so the payload can be written without copying (for
// example with net.Buffers).
//
// Decoding is incremental. [Decoder] reads frames from an io.Reader:
//
//	dec := proxy.NewDecoder(conn, proxy.ClientToProxy, proxy.Limits{})
//	for {
//		msg, err := dec.Next()
//		if err != nil {
//			// io.EOF: clean end of the link; *FrameError: malformed input;
//			// anything else: the reader's error.
//			return err
//		}
//		switch m := msg.(type) {
//		case *proxy.StreamType:
//		case *proxy.TxPayload:
//		}
//	}
//
// By default the messages Next returns, payloads included, belong to the
// caller; [Decoder.SetBorrow] trades that for zero allocations per frame,
// with messages valid only until the next call ([Clone] copies one).
//
// [Parse] is the push-style primitive underneath: it decodes one frame from
// the start of a byte slice, or reports that more bytes are needed, and never
// keeps state, so any split of the byte stream works.
//
// Every length is checked against the frame, the message's fixed layout and
// [Limits] before it is used, as soon as the 3-byte header is available; the
// decoder never allocates more than the limit for the message allows and never
// panics on any input (both decoders are fuzzed). Malformed input yields a
// [*FrameError] wrapping one of the sentinel errors ([ErrUnknownCode],
// [ErrWrongDirection], [ErrReserved], [ErrLength], [ErrTooLarge],
// [ErrVersion], [ErrField], [ErrTruncated]).
//
// The codec checks each frame on its own (spec/wire.md §8, the frame-local
// rules). Session rules (STREAMTYPE first and once, CREATE_RESULT only while
// waiting for it, no CONNSTATE before CREATE_RESULT, the proxy_buflen of the
// resolved streamtype) belong to the proxy server and the proxied client,
// which can tighten [Limits] with [Decoder.SetLimits] once they know them.
package proxy
