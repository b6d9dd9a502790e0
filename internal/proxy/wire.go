package proxy

import (
	"strconv"

	"github.com/securestreams/ss/internal/event"
)

// Version is the SSSv1 protocol version carried in STREAMTYPE.
const Version = 1

// Format limits (docs/wire.md §2.3, §7.4).
const (
	// HeaderLen is the size of a frame header: code and u16 body length.
	HeaderLen = 3
	// MaxBody is the largest frame body L.
	MaxBody = 65535
	// MaxFrame is the largest whole frame.
	MaxFrame = HeaderLen + MaxBody
	// PayloadHeaderLen is the fixed part of an RX_PAYLOAD / TX_PAYLOAD body:
	// flags, a 32-bit µs field and a 64-bit µs timestamp.
	PayloadHeaderLen = 16
	// MaxPayload is the largest payload a frame without RIDESHARE can carry.
	MaxPayload = MaxBody - PayloadHeaderLen
	// MaxStreamTypeName is the longest streamtype name in STREAMTYPE.
	MaxStreamTypeName = 31
	// MaxMetadataName is the longest metadata name in a METADATA frame.
	MaxMetadataName = 30
	// MaxRideshareName is the longest rideshare name in a payload frame.
	MaxRideshareName = 31
	// MaxProxyMetadataFrame bounds 4+k+v of a METADATA frame sent by a proxy
	// (the largest an lws proxy sends, §4.4).
	MaxProxyMetadataFrame = 1580
	// MaxRideshareList bounds the CREATE_RESULT rideshare list (commas
	// included): lws clients require it to be shorter than 128 bytes.
	MaxRideshareList = 127
	// MaxRideshares is the most names a CREATE_RESULT list may carry for lws
	// clients (4 comma-separated slots, the first one empty).
	MaxRideshares = 3
	// DefaultProxyBuflen is the default proxy_buflen: the largest TX payload
	// this library's proxy accepts in one frame.
	DefaultProxyBuflen = 32768
	// DefaultCredit is the initial tx credit lws clients offer (500000000).
	DefaultCredit = 500000000
)

// WireFlags are the payload flags that may appear in a frame (§5.1). Other
// bits are sent as 0 and dropped on receipt.
const WireFlags = event.SOM | event.EOM | event.PollFlag | event.RelatedStart |
	event.RelatedEnd | event.RideshareFlag

// Direction says which way frames travel, and therefore which codes are valid.
type Direction uint8

// Directions.
const (
	// ClientToProxy frames are sent by a proxied client and read by a proxy.
	ClientToProxy Direction = 1
	// ProxyToClient frames are sent by a proxy and read by a proxied client.
	ProxyToClient Direction = 2
)

// String returns "client→proxy" or "proxy→client".
func (d Direction) String() string {
	switch d {
	case ClientToProxy:
		return "client→proxy"
	case ProxyToClient:
		return "proxy→client"
	}
	return "direction(" + strconv.Itoa(int(d)) + ")"
}

// Code is an SSSv1 message code, the first byte of a frame.
type Code uint8

// Message codes (docs/wire.md §2.4). Rx… codes travel proxy → client, Tx…
// codes client → proxy, as in libwebsockets' LWSSS_SER_RXPRE_/TXPRE_ names.
const (
	CodeRxPayload         Code = 0x55
	CodeCreateResult      Code = 0x56
	CodeConnState         Code = 0x57
	CodeRxCredit          Code = 0x58
	CodeRxMetadata        Code = 0x59
	CodeTLSSign           Code = 0x5A // reserved; never sent
	CodePerf              Code = 0x5B
	CodeStreamType        Code = 0xAA
	CodeOnwardConnect     Code = 0xAB
	CodeDestroying        Code = 0xAC
	CodeTxPayload         Code = 0xAD
	CodeTxMetadata        Code = 0xAE
	CodeTxCredit          Code = 0xAF
	CodeTimeoutUpdate     Code = 0xB0
	CodePayloadLengthHint Code = 0xB1
	CodeTLSSigned         Code = 0xB2 // reserved; never sent
	CodeLinkProbe         Code = 0xB3 // reserved (lws v4.4+); never sent
)

var codeNames = map[Code]string{
	CodeRxPayload:         "RX_PAYLOAD",
	CodeCreateResult:      "CREATE_RESULT",
	CodeConnState:         "CONNSTATE",
	CodeRxCredit:          "RX_TXCR_UPDATE",
	CodeRxMetadata:        "RX_METADATA",
	CodeTLSSign:           "TLS_SIGN(reserved)",
	CodePerf:              "PERF",
	CodeStreamType:        "STREAMTYPE",
	CodeOnwardConnect:     "ONWARD_CONNECT",
	CodeDestroying:        "DESTROYING",
	CodeTxPayload:         "TX_PAYLOAD",
	CodeTxMetadata:        "TX_METADATA",
	CodeTxCredit:          "TX_TXCR_UPDATE",
	CodeTimeoutUpdate:     "TIMEOUT_UPDATE",
	CodePayloadLengthHint: "PAYLOAD_LENGTH_HINT",
	CodeTLSSigned:         "TLS_SIGNED(reserved)",
	CodeLinkProbe:         "LINK_PROBE(reserved)",
}

// String returns the message name, e.g. "TX_PAYLOAD", or "0xNN" when unknown.
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	const hex = "0123456789ABCDEF"
	return string([]byte{'0', 'x', hex[c>>4], hex[c&15]})
}

// Limits bound what a decoder accepts beyond the format limits. The zero
// value gives the defaults of docs/wire.md §7.4. Values above the format
// limit are clamped to it; zero or negative values mean the default.
type Limits struct {
	// MaxTxPayload bounds the payload of one TX_PAYLOAD (client → proxy): the
	// streamtype's proxy_buflen. Default DefaultProxyBuflen (32768).
	MaxTxPayload int
	// MaxRxPayload bounds the payload of one RX_PAYLOAD (proxy → client).
	// Default: the format limit (lws proxies send up to L = 65535, W9).
	MaxRxPayload int
	// MaxMetadataValue bounds a METADATA value in either direction.
	// Default: the format limit.
	MaxMetadataValue int
}

func (l Limits) maxTx() int   { return clampLimit(l.MaxTxPayload, DefaultProxyBuflen) }
func (l Limits) maxRx() int   { return clampLimit(l.MaxRxPayload, MaxPayload) }
func (l Limits) maxMeta() int { return clampLimit(l.MaxMetadataValue, MaxBody) }

func clampLimit(v, def int) int {
	if v <= 0 {
		v = def
	}
	if v > MaxBody {
		v = MaxBody
	}
	return v
}

// Message is one decoded or to-be-encoded SSSv1 message. The concrete types
// are pointers to the structs of this package: *StreamType, *OnwardConnect,
// *Destroying, *TxPayload, *TxMetadata, *TxCredit, *TimeoutUpdate,
// *PayloadLengthHint (client → proxy) and *CreateResult, *ConnState,
// *RxCredit, *RxMetadata, *RxPayload, *Perf (proxy → client).
type Message interface {
	// Code returns the message code the frame is sent with.
	Code() Code
	// AppendBinary appends the whole frame to b. It fails, appending
	// nothing, when a field is outside the spec's limits (it implements
	// encoding.BinaryAppender).
	AppendBinary(b []byte) ([]byte, error)
}

// StreamType (0xAA, client → proxy) creates the stream; it is the first frame
// on a link (§3.1). The protocol version is always 1.
type StreamType struct {
	// PID is the client's process id (0 where not available).
	PID uint32
	// Credit is the initial receive window offered to the onward peer
	// (DefaultCredit in lws clients).
	Credit int32
	// Name is the streamtype name, 1..31 bytes.
	Name string
}

// OnwardConnect (0xAB, client → proxy) asks the proxy to connect the onward
// stream (§3.2).
type OnwardConnect struct{}

// Destroying (0xAC, client → proxy) is never sent by lws or this library's
// clients; a proxy treats it like end of file (§3.3).
type Destroying struct{}

// TxPayload (0xAD, client → proxy) carries data for the onward peer (§3.4).
type TxPayload struct {
	// Flags are the payload flags (§5.1). On encoding, RIDESHARE is set
	// exactly when Rideshare is not empty and bits outside WireFlags are
	// dropped; on decoding Flags are as received, restricted to WireFlags.
	Flags event.Flags
	// DelayUS is the advisory µs from the first tx request to this write.
	DelayUS uint32
	// TimeUS is the sender's monotonic clock in µs (opaque, W16).
	TimeUS uint64
	// Rideshare is the rideshare streamtype name (1..31 bytes), or "".
	Rideshare string
	// Payload is the data, possibly empty. See Decoder for ownership.
	Payload []byte
}

// TxMetadata (0xAE, client → proxy) sets one metadata item on the onward
// stream (§3.5).
type TxMetadata struct {
	// Name is the metadata name, 1..30 bytes.
	Name string
	// Value is the value. Decoding accepts an empty value (this library's
	// proxy sets it); encoding refuses one, since lws proxies close the link
	// on it (W11).
	Value []byte
}

// TxCredit (0xAF, client → proxy) grants the onward peer more receive credit
// (§3.6).
type TxCredit struct {
	Delta int32
}

// Timeout values of TimeoutUpdate (§3.7).
const (
	// TimeoutDefault starts the streamtype's timeout_ms.
	TimeoutDefault uint32 = 0
	// TimeoutCancel cancels the stream timeout.
	TimeoutCancel uint32 = 0xFFFFFFFF
)

// TimeoutUpdate (0xB0, client → proxy) starts or cancels the onward stream's
// timeout (§3.7).
type TimeoutUpdate struct {
	// Millis is the timeout in ms, TimeoutDefault or TimeoutCancel.
	Millis uint32
}

// PayloadLengthHint (0xB1, client → proxy) announces the length of the coming
// payload (§3.8).
type PayloadLengthHint struct {
	Length uint32
}

// Create results (§4.1).
const (
	ResultOK     uint8 = 0
	ResultFailed uint8 = 1
)

// CreateResult (0x56, proxy → client) answers STREAMTYPE (§4.1).
type CreateResult struct {
	// Result is ResultOK; anything else means the creation failed.
	Result uint8
	// ClientBuflen is the policy's client_buflen (0 if unset; advisory).
	ClientBuflen uint32
	// Rideshares are the streamtype's own name and the streamtypes reached
	// through rideshare links (success only). They are sent each preceded
	// by a comma (W1); decoding accepts the list with or without the
	// leading comma and drops empty names.
	Rideshares []string
}

// OK reports whether the stream was created.
func (m *CreateResult) OK() bool { return m.Result == ResultOK }

// ConnState (0x57, proxy → client) reports an onward stream state (§4.2).
// States below 256 use the 5-byte short form, others the 8-byte long form.
type ConnState struct {
	State event.State
	Ack   uint32
}

// RxCredit (0x58, proxy → client; also 0xAF when received by a client, W7)
// reports credit granted by the onward peer (§4.3).
type RxCredit struct {
	Delta int32
}

// RxMetadata (0x59, proxy → client) carries a metadata value captured from the
// onward connection (§4.4).
type RxMetadata struct {
	// Name is the metadata name, 1..30 bytes.
	Name string
	// Value is the value. Decoding accepts an empty value; encoding refuses
	// one and keeps 4+len(Name)+len(Value) ≤ MaxProxyMetadataFrame.
	Value []byte
}

// RxPayload (0x55, proxy → client) carries data from the onward peer (§4.5).
// The reserved latency field is written as 0 and ignored on receipt (W5).
type RxPayload struct {
	// Flags as reported by the onward protocol; see TxPayload.Flags for
	// how RIDESHARE and unknown bits are handled.
	Flags event.Flags
	// TimeUS is the proxy's monotonic clock in µs (opaque, W16).
	TimeUS uint64
	// Rideshare is the rideshare streamtype name (1..31 bytes), or "".
	Rideshare string
	// Payload is the data, possibly empty. See Decoder for ownership.
	Payload []byte
}

// Perf (0x5B, proxy → client) carries a connection performance report (§4.6).
// Any content is accepted (lws v4.4+ proxies cut it to 5 bytes, W4); a proxy
// receiving one from a client ignores it.
type Perf struct {
	JSON []byte
}

// Code implementations.

// Code returns CodeStreamType.
func (*StreamType) Code() Code { return CodeStreamType }

// Code returns CodeOnwardConnect.
func (*OnwardConnect) Code() Code { return CodeOnwardConnect }

// Code returns CodeDestroying.
func (*Destroying) Code() Code { return CodeDestroying }

// Code returns CodeTxPayload.
func (*TxPayload) Code() Code { return CodeTxPayload }

// Code returns CodeTxMetadata.
func (*TxMetadata) Code() Code { return CodeTxMetadata }

// Code returns CodeTxCredit.
func (*TxCredit) Code() Code { return CodeTxCredit }

// Code returns CodeTimeoutUpdate.
func (*TimeoutUpdate) Code() Code { return CodeTimeoutUpdate }

// Code returns CodePayloadLengthHint.
func (*PayloadLengthHint) Code() Code { return CodePayloadLengthHint }

// Code returns CodeCreateResult.
func (*CreateResult) Code() Code { return CodeCreateResult }

// Code returns CodeConnState.
func (*ConnState) Code() Code { return CodeConnState }

// Code returns CodeRxCredit.
func (*RxCredit) Code() Code { return CodeRxCredit }

// Code returns CodeRxMetadata.
func (*RxMetadata) Code() Code { return CodeRxMetadata }

// Code returns CodeRxPayload.
func (*RxPayload) Code() Code { return CodeRxPayload }

// Code returns CodePerf.
func (*Perf) Code() Code { return CodePerf }
