// Package httpc implements the HTTP client protocols of Secure Streams:
// h1 (HTTP/1.1, one connection per transaction), h2 (HTTP/2 over TLS with
// ALPN, connections shared per connection identity, falling back to
// HTTP/1.1) and h3 (HTTP/3 over QUIC, connections shared per identity).
//
// Each adapter implements transport.Protocol: Run performs one transaction
// (request with the policy's headers and body rules, response, body) and
// reports it through the transport.Sink exactly as docs/streams.md §11.2–§11.4
// say: captured header metadata, the http_resp_map user state, CONNECTED,
// the body as rx chunks (SOM on the first, a zero-length EOM chunk last; or
// one message per part with http_multipart_ss_in), then QOS_ACK_REMOTE or
// QOS_NACK_REMOTE, and Result{Completed: true}.
//
// Limits of this implementation (documented here because x/net and quic-go
// do not expose them):
//
//   - nghttp2_quirk_end_stream: x/net/http2 and quic-go always send
//     END_STREAM with the HEADERS of a request without body, so the quirk
//     is always in effect.
//   - h2q_oflow_txcr: x/net/http2 treats a WINDOW_UPDATE that overflows the
//     send window as a connection error; clamping is not possible without
//     reimplementing its flow control, so the key has no effect (the error
//     ends the attempt or connection as a loss).
//   - Initial receive windows and AddPeerTxCredit are not adjustable per
//     stream with x/net/http2.
//   - Validity keep-alive on shared connections uses the libraries' own
//     PING machinery (http2 ReadIdleTimeout/PingTimeout, QUIC keep-alives).
package httpc
