package policy

import (
	"crypto"
	"crypto/x509"
	"strings"
)

// Protocol is a streamtype's wire protocol. The numeric values are the
// libwebsockets protocol indexes.
type Protocol uint8

// Protocols, with the libwebsockets index values.
const (
	H1   Protocol = 0
	H2   Protocol = 1
	H3   Protocol = 2
	WS   Protocol = 3
	MQTT Protocol = 4
	Raw  Protocol = 5
)

// String returns the protocol's policy spelling ("h1", "h2", ...).
func (p Protocol) String() string {
	switch p {
	case H1:
		return "h1"
	case H2:
		return "h2"
	case H3:
		return "h3"
	case WS:
		return "ws"
	case MQTT:
		return "mqtt"
	case Raw:
		return "raw"
	}
	return "protocol(" + itoa(int(p)) + ")"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// Policy is a parsed, validated, immutable policy database. Never modify a
// Policy after it has been returned by Parse, ApplyOverlay or generated code:
// streams share it.
type Policy struct {
	Release       string
	Product       string
	SchemaVersion int
	ViaSOCKS5     string // top-level default SOCKS5 proxy, "" for none

	Retry       []*Retry      // document order, duplicates resolved (later wins in earlier's position)
	Certs       []*Cert       // document order
	TrustStores []*TrustStore // document order
	Auth        []*Auth       // document order
	Metrics     []*Metrics    // document order
	Streamtypes []*Streamtype // document order
}

// Retry is one named retry/backoff policy (docs/policy.md).
type Retry struct {
	Name       string
	Backoff    []uint32 // ms; empty means "no table" (3000 ms base)
	Conceal    uint16   // 65535 = retry forever
	JitterPct  uint8    // 0..100; 30 when the key is absent
	SValidPing uint16   // seconds
	SValidHup  uint16   // seconds; 0 = validity checking off
}

// CertKind says whether a certs entry holds a certificate or a private key.
type CertKind uint8

// Cert kinds.
const (
	KindCertificate CertKind = 1
	KindPrivateKey  CertKind = 2
)

// Cert is one named entry of the certs section, decoded and parsed at load time.
type Cert struct {
	Name string
	DER  []byte
	Kind CertKind
	// Exactly one of these is set, according to Kind.
	Certificate *x509.Certificate
	PrivateKey  crypto.PrivateKey
}

// TrustStore is a named set of CA certificates (docs/policy.md).
type TrustStore struct {
	Name  string
	Stack []*Cert        // in listed order, each of KindCertificate
	Pool  *x509.CertPool // ready to use; contains exactly Stack
}

// AuthType is the kind of an auth scheme.
type AuthType uint8

// Auth types. AuthToken is the default (type absent or unrecognised).
const (
	AuthToken AuthType = 0
	AuthSigV4 AuthType = 1
	AuthLWA   AuthType = 2
	AuthJWT   AuthType = 3
)

// Auth is one auth scheme (docs/policy.md).
type Auth struct {
	Name           string
	Type           AuthType
	TypeName       string      // the type string as written ("" when absent)
	StreamtypeName string      // "" when absent
	Streamtype     *Streamtype // resolved auth[].streamtype, nil when absent
	Blob           uint8       // 0..3
}

// Metrics is one metrics reporting policy (docs/policy.md).
type Metrics struct {
	Name       string // name
	USSchedule uint64 // us_schedule: reporting interval in µs; 0: on demand only
	USHalflife uint32 // us_halflife: decay unit for histogram aging, µs
	MinOutlier uint8  // min_outlier: contributions before an outlier is reported
	Report     string // report: comma-separated metric-name globs (see Reports)
}

// MetadataItem is one declared metadata name of a streamtype (docs/policy.md).
type MetadataItem struct {
	Name string
	// Header is the mapped HTTP header name with one trailing ':' removed,
	// "" when the item is only a value holder. HeaderRaw keeps the text as written.
	Header    string // as written (compare case-insensitively)
	HeaderRaw string
	Index     int // position in Streamtype.Metadata (declaration order)
	// PreEncoded is set when the streamtype's url_preencoded key names the
	// item: its values are substituted into endpoint and http_url paths and
	// queries verbatim (checked, not percent-encoded).
	PreEncoded bool
}

// RespMapEntry maps one HTTP status to a user state (docs/policy.md).
type RespMapEntry struct {
	Status int    // 100..599
	State  uint32 // 1000..65535
}

// Option is one server option name → value pair.
type Option struct {
	Name  string
	Value string
}

// Streamtype is one entry of the s section: everything a stream of this type
// needs. Fields hold the effective values (defaults applied) unless noted.
type Streamtype struct {
	Name string

	// General keys (docs/policy.md).
	Protocol            Protocol
	Endpoint            string    // as written; "" when absent
	EndpointTmpl        *Template // precompiled Endpoint; nil when Endpoint is ""
	Port                uint16
	TLS                 bool        // as written; h3 uses TLS even when false (a conflict warning at load)
	TrustStoreName      string      // "" for system roots
	TrustStore          *TrustStore // resolved, nil for system roots
	ClientCert          int         // -1 when absent, else 0..254
	RetryName           string
	Retry               *Retry // resolved, nil = no retries
	TimeoutMS           uint32
	Opportunistic       bool
	NailedUp            bool
	AllowRedirects      bool
	UrgentTx            bool
	UrgentRx            bool
	AttrPriority        uint8
	AttrLowLatency      bool
	AttrHighThroughput  bool
	AttrHighReliability bool
	AttrLowCost         bool
	Perf                bool
	Metadata            []*MetadataItem // declaration order
	RideshareName       string
	Rideshare           *Streamtype // resolved, nil when absent
	PayloadFmt          string
	LocalSink           bool
	SwakeValidity       bool
	DirectProtoStr      bool
	ViaSOCKS5           string // effective: own value, else the top-level one
	ViaSOCKS5Own        string // as written on the streamtype, "" when absent
	UseAuthName         string
	UseAuth             *Auth  // resolved, nil when absent
	AWSRegion           string // metadata name holding the SigV4 region
	AWSService          string // metadata name holding the SigV4 service
	Options             []Option

	// Server keys (docs/policy.md).
	Server         bool
	ServerCertName string
	ServerCert     *Cert
	ServerKeyName  string
	ServerKey      *Cert
	// ListenerOf is set when Endpoint is "!name": the server streamtype whose
	// listener this one shares.
	ListenerOf *Streamtype

	// Proxy keys (docs/policy.md); raw values as written (0 = default).
	ProxyBuflen                uint32
	ProxyBuflenRxflowOnAbove   uint32
	ProxyBuflenRxflowOffBelow  uint32
	ClientBuflen               uint32
	ClientBuflenRxflowOnAbove  uint32
	ClientBuflenRxflowOffBelow uint32

	// HTTP keys (docs/policy.md).
	HTTPMethod            string // effective: "GET" default for h1/h2/h3 clients
	HTTPURL               string
	HTTPURLTmpl           *Template // nil when HTTPURL is ""
	HTTPExpect            int       // 0 = any 2xx
	HTTPFailRedirect      bool
	HTTPRespMap           []RespMapEntry // document order, first mapping of a status wins
	HTTPAuthHeader        string         // trailing ':' removed
	HTTPAuthPreamble      string
	AuthHexify            bool
	HTTPDSNHeader         string // trailing ':' removed
	HTTPFWVHeader         string
	HTTPDevtypeHeader     string
	HTTPNoContentLength   bool
	HTTPWWWFormURLEncoded bool
	HTTPMultipartName     string
	HTTPMultipartFilename string
	HTTPMimeContentType   string // also set by http_multipart_content_type
	HTTPMultipartSSIn     bool
	HTTPCookies           bool
	NGHTTP2QuirkEndStream bool
	H2QOflowTxcr          bool
	LongPoll              bool

	// WebSocket keys (docs/policy.md).
	WSSubprotocol     string
	WSBinary          bool
	WSPrioritizeReads bool
	// WSMaxRxMessage is the largest ws message accepted from the peer, in
	// bytes (0: the transport's default, 16 MiB); a larger one closes the
	// connection with 1009 (docs/security-validation.md).
	WSMaxRxMessage uint32

	// MQTT keys (docs/policy.md).
	MQTTTopic            string
	MQTTTopicTmpl        *Template
	MQTTSubscribe        string
	MQTTSubscribeTmpl    *Template
	MQTTQoS              uint8
	MQTTRetain           bool
	MQTTKeepAlive        uint16
	MQTTCleanStart       bool
	MQTTWillTopic        string
	MQTTWillTopicTmpl    *Template
	MQTTWillMessage      string
	MQTTWillMessageTmpl  *Template
	MQTTWillQoS          uint8
	MQTTWillRetain       bool
	MQTTBirthTopic       string
	MQTTBirthTopicTmpl   *Template
	MQTTBirthMessage     string
	MQTTBirthMessageTmpl *Template
	MQTTBirthQoS         uint8
	MQTTBirthRetain      bool
	AWSIoT               bool
	// MQTTWSPath (mqtt_ws_path), when set, carries MQTT over a WebSocket
	// to this path (subprotocol mqtt), presigned when use_auth names a
	// sigv4 scheme (docs/auth.md).
	MQTTWSPath string
}

// MetadataIndex returns the index of the declared metadata item name, or -1.
func (st *Streamtype) MetadataIndex(name string) int {
	for i, m := range st.Metadata {
		if m.Name == name {
			return i
		}
	}
	return -1
}

// Streamtype returns the streamtype called name (exact match), or nil.
func (p *Policy) Streamtype(name string) *Streamtype {
	for _, st := range p.Streamtypes {
		if st.Name == name {
			return st
		}
	}
	return nil
}

// Template is a precompiled "${name}" string (docs/policy-language.md §6). Parts alternate
// between literal text and metadata references resolved to indexes into the
// streamtype's Metadata at load time, so expansion does no lookups by name.
type Template struct {
	Raw   string
	Parts []TemplatePart
}

// TemplatePart is a literal (Meta < 0) or a metadata reference (Meta >= 0,
// an index into Streamtype.Metadata; Lit then holds the name).
type TemplatePart struct {
	Lit  string
	Meta int
}

// Expand substitutes metadata values: value(i) returns the value of the
// metadata item with index i ("" when unset). A nil Template expands to "".
// Expansion does no lookups by name and allocates at most the result.
func (t *Template) Expand(value func(i int) string) string {
	if t == nil {
		return ""
	}
	switch len(t.Parts) {
	case 0:
		return ""
	case 1:
		if t.Parts[0].Meta < 0 {
			return t.Parts[0].Lit
		}
		return value(t.Parts[0].Meta)
	}
	var b strings.Builder
	b.Grow(len(t.Raw))
	for _, p := range t.Parts {
		if p.Meta < 0 {
			b.WriteString(p.Lit)
		} else {
			b.WriteString(value(p.Meta))
		}
	}
	return b.String()
}
