// Package proxy implements the Secure Streams proxy: the SSSv1 wire codec
// (this file's neighbours wire.go, encode.go, decode.go), the proxy server
// (server.go) and the proxied-client links (client.go) built on it.
//
// # Wire codec
//
// SSSv1 (docs/wire.md) frames are a one-byte message code, a big-endian u16
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
// The codec checks each frame on its own (docs/wire.md §8, the frame-local
// rules). Session rules (STREAMTYPE first and once, CREATE_RESULT only while
// waiting for it, no CONNSTATE before CREATE_RESULT, the proxy_buflen of the
// resolved streamtype) belong to the proxy server and the proxied client,
// which can tighten [Limits] with [Decoder.SetLimits] once they know them.
//
// # Proxy server
//
// [Server] serves links (docs/wire.md §6.3, §11.2): per link a 3 s deadline
// for STREAMTYPE, the onward stream created through [Onward] (the root
// package's Runtime.ServeProxy adapts a runtime), CREATE_RESULT with the
// rideshare list ([FitRideshares]), then client frames applied to the onward
// stream and onward events forwarded in order as CONNSTATE (with the §7.3
// conversions: QoS LOCAL states as REMOTE, DISCONNECTED → ALL_RETRIES_FAILED
// as DISCONNECTED, POLL, ALL_RETRIES_FAILED, transitions lws clients would
// reject withheld and counted; for HTTP POST/PUT/PATCH onward streams an
// early CONNECTED sent with CONNECTING, OnwardInfo.EarlyConnected),
// RX_PAYLOAD, METADATA and PERF. Any §8
// violation closes only that link, with a log line; end of file (or
// DESTROYING) destroys the onward stream. Back-pressure instead of loss
// (§7.2), per link, from the link's streamtype (OnwardInfo): the onward
// stream's transmit queue holds at most proxy_buflen bytes (Runtime.ServeProxy
// sizes it per stream) and while it is full the link is not read; a single
// TX_PAYLOAD over proxy_buflen closes the link. Towards the client, frames
// wait in a queue written by a writer goroutine that exists only while the
// queue is not empty; once the queued bytes reach
// proxy_buflen_rxflow_on_above the onward events are no longer drained (the
// onward stream's own receive queue then fills and it stops reading its
// peer) until the writer brings them below proxy_buflen_rxflow_off_below
// (default half of on_above). The queue never exceeds on_above plus one
// onward event; Server.QueueHighWater reports its largest size.
//
// # Limits
//
// Proxy clients are not trusted (SECURITY.md). [Server.Limits]
// ([ServerLimits], zero value: the defaults) bounds the links in total, per
// peer uid and per peer process (credentials from SO_PEERCRED, logged with
// each link), the metadata a client sets, the bytes all links together may
// queue, the time a frame may take to arrive, and who may connect
// (AllowUIDs, AllowGIDs). A connection over a limit gets CREATE_RESULT
// failed at once and is closed ([Server.Refused] counts them). Control
// frames are coalesced rather than queued: a link applies at most
// ControlRate control operations per second to its onward stream and keeps
// one pending connect, the latest timeout and the latest length hint for
// the rest (control.go), so no client can grow the onward stream actor's
// mailbox. docs/proxy.md lists every limit with its default.
//
// # Tx credit
//
// Credit is advisory (§7.1) and only h2/h3 onward streams could produce or
// use it. The proxied client keeps both counters: ClientStream.TxCredit (what
// the proxy granted with TXCR_UPDATE 0x58, minus what was sent) and
// ClientStream.PeerTxCredit (the STREAMTYPE credit plus AddPeerTxCredit
// grants, minus the payload received); AddPeerTxCredit sends TXCR_UPDATE
// 0xAF. The proxy server cannot apply either direction: the h2 client of
// golang.org/x/net (and the h3 client) choose the initial stream window
// themselves (the STREAMTYPE credit cannot set it) and send WINDOW_UPDATE
// on their own as the body is read, with no API to grant a single stream
// more window. So a client's TXCR_UPDATE (0xAF) is accepted, checked
// (exactly 4 bytes) and dropped with a debug-level log line, and the server
// never sends TXCR_UPDATE (0x58); lws clients and this library's client
// never stop sending for lack of credit, so nothing waits on it.
//
// # Proxied client
//
// [Client] and [ClientStream] run the link of one proxied stream (§6.1,
// §11.1) for a [Local] stream (package stream's Remote): dial, STREAMTYPE,
// CREATE_RESULT within 3 s, CREATING once, queued METADATA, TIMEOUT_UPDATE,
// PAYLOAD_LENGTH_HINT and ONWARD_CONNECT after it and never pipelined
// behind STREAMTYPE, TX_PAYLOAD only in OPERATIONAL (split into frames of at
// most 4061 bytes by default), UPSTREAM_LINK_RETRY about once a second while
// the proxy cannot be reached, DISCONNECTED and re-creation (metadata sent
// again, no second CREATING) after link loss. It never sends DESTROYING,
// 0xB2 or 0xB3. Applications use it through ss.Config.Proxy.
package proxy
