package policy

import (
	"math"
	"strconv"
	"strings"
)

// appMask is a set of (role, protocol) pairs a key applies to (docs/policy.md).
type appMask uint16

const (
	aH1C appMask = 1 << iota
	aH2C
	aH3C
	aWSC
	aMQTTC
	aRawC
	aH1S
	aH2S
	aH3S
	aWSS
	aMQTTS
	aRawS

	aAll     = appMask(1<<12 - 1)
	aClients = aH1C | aH2C | aH3C | aWSC | aMQTTC | aRawC
	aServers = aAll &^ aClients
	aHTTPC   = aH1C | aH2C | aH3C
	aMQTT    = aMQTTC | aMQTTS
)

func roleMask(p Protocol, server bool) appMask {
	if p > Raw {
		return 0
	}
	m := appMask(1) << p
	if server {
		m <<= 6
	}
	return m
}

type keyKind uint8

const (
	kBool    keyKind = iota
	kStr             // plain string; "${" gives no-substitution
	kHeader          // header name: one trailing ':' removed
	kSubst           // string with ${name} substitution, compiled in pass 2
	kRef             // reference to a named object, resolved in pass 2
	kUint            // integer in [min, max]
	kSpecial         // handled by its own code
)

// stKey describes one streamtype key.
type stKey struct {
	name     string
	kind     keyKind
	min, max int64
	applies  appMask
	b        func(*Streamtype) *bool
	s        func(*Streamtype) *string
	t        func(*Streamtype) **Template
	u        func(*Streamtype) any // pointer to the integer field
	// noEffect, when set, is why this implementation stores the key without
	// acting on it: a non-default value gets a no-effect warning.
	noEffect string
}

// Key ids of keys that pass 2 looks at by id.
const (
	kidProtocol = iota
	kidEndpoint
	kidPort
	kidTLS
	kidTrustStore
	kidClientCert
	kidRetry
	kidMetadata
	kidRideshare
	kidLocalSink
	kidViaSOCKS5
	kidUseAuth
	kidAWSRegion
	kidAWSService
	kidPlugins
	kidOptions
	kidServer
	kidServerCert
	kidServerKey
	kidProxyBuflen
	kidProxyOnAbove
	kidProxyOffBelow
	kidHTTPMethod
	kidHTTPURL
	kidRespMap
	kidAuthHeader
	kidAuthPreamble
	kidAuthHexify
	kidMimeContentType
	kidMultipartContentType
	kidWSSubprotocol
	kidWSBinary
	kidWSPrioritizeReads
	kidMQTTTopic
	kidMQTTSubscribe
	kidMQTTKeepAlive
	kidMQTTCleanStart
	kidMQTTWillTopic
	kidMQTTWillMessage
	kidMQTTWillQoS
	kidMQTTWillRetain
	kidMQTTBirthTopic
	kidMQTTBirthMessage
	kidMQTTBirthQoS
	kidMQTTBirthRetain
	kidMQTTWSPath
	kidURLPreencoded
	kidFirstPlain // keys after this need no special treatment by id
)

func bk(name string, applies appMask, f func(*Streamtype) *bool) stKey {
	return stKey{name: name, kind: kBool, applies: applies, b: f}
}
func sk(name string, kind keyKind, applies appMask, f func(*Streamtype) *string) stKey {
	return stKey{name: name, kind: kind, applies: applies, s: f}
}
func tk(name string, applies appMask, f func(*Streamtype) *string, t func(*Streamtype) **Template) stKey {
	return stKey{name: name, kind: kSubst, applies: applies, s: f, t: t}
}
func uk(name string, min, max int64, applies appMask, f func(*Streamtype) any) stKey {
	return stKey{name: name, kind: kUint, min: min, max: max, applies: applies, u: f}
}

// inert marks k as parsed and stored but without effect, for reason.
func inert(k stKey, reason string) stKey {
	k.noEffect = reason
	return k
}

// setInt stores v in the integer field a uint key's accessor returns.
func setInt(field any, v int64) {
	switch p := field.(type) {
	case *uint8:
		*p = uint8(v)
	case *uint16:
		*p = uint16(v)
	case *uint32:
		*p = uint32(v)
	case *int:
		*p = int(v)
	}
}

// getInt reads the integer field a uint key's accessor returns.
func getInt(field any) int64 {
	switch p := field.(type) {
	case *uint8:
		return int64(*p)
	case *uint16:
		return int64(*p)
	case *uint32:
		return int64(*p)
	case *int:
		return int64(*p)
	}
	return 0
}

// stKeys is every streamtype key; the first kidFirstPlain entries are in
// kid order.
var stKeys = []stKey{
	kidProtocol:   {name: "protocol", kind: kSpecial, applies: aAll},
	kidEndpoint:   tk("endpoint", aAll, func(s *Streamtype) *string { return &s.Endpoint }, func(s *Streamtype) **Template { return &s.EndpointTmpl }),
	kidPort:       uk("port", 0, 65535, aAll, func(s *Streamtype) any { return &s.Port }),
	kidTLS:        bk("tls", aAll, func(s *Streamtype) *bool { return &s.TLS }),
	kidTrustStore: sk("tls_trust_store", kRef, aClients, func(s *Streamtype) *string { return &s.TrustStoreName }),
	kidClientCert: uk("client_cert", 0, 254, aClients, func(s *Streamtype) any { return &s.ClientCert }),
	kidRetry:      sk("retry", kRef, aClients, func(s *Streamtype) *string { return &s.RetryName }),
	kidMetadata:   {name: "metadata", kind: kSpecial, applies: aAll},
	kidRideshare:  sk("rideshare", kRef, aHTTPC, func(s *Streamtype) *string { return &s.RideshareName }),
	kidLocalSink: inert(bk("local_sink", aAll, func(s *Streamtype) *bool { return &s.LocalSink }),
		"local sinks are not implemented and creating a stream of this streamtype fails"),
	kidViaSOCKS5:       {name: "via-socks5", kind: kSpecial, applies: aClients},
	kidUseAuth:         sk("use_auth", kRef, aClients, func(s *Streamtype) *string { return &s.UseAuthName }),
	kidAWSRegion:       sk("aws_region", kRef, aAll, func(s *Streamtype) *string { return &s.AWSRegion }),
	kidAWSService:      sk("aws_service", kRef, aAll, func(s *Streamtype) *string { return &s.AWSService }),
	kidPlugins:         {name: "plugins", kind: kSpecial, applies: aAll},
	kidOptions:         {name: "options", kind: kSpecial, applies: aServers},
	kidServer:          bk("server", aAll, func(s *Streamtype) *bool { return &s.Server }),
	kidServerCert:      sk("server_cert", kRef, aServers, func(s *Streamtype) *string { return &s.ServerCertName }),
	kidServerKey:       sk("server_key", kRef, aServers, func(s *Streamtype) *string { return &s.ServerKeyName }),
	kidProxyBuflen:     uk("proxy_buflen", 0, math.MaxUint32, aAll, func(s *Streamtype) any { return &s.ProxyBuflen }),
	kidProxyOnAbove:    uk("proxy_buflen_rxflow_on_above", 0, math.MaxUint32, aAll, func(s *Streamtype) any { return &s.ProxyBuflenRxflowOnAbove }),
	kidProxyOffBelow:   uk("proxy_buflen_rxflow_off_below", 0, math.MaxUint32, aAll, func(s *Streamtype) any { return &s.ProxyBuflenRxflowOffBelow }),
	kidHTTPMethod:      sk("http_method", kStr, aHTTPC, func(s *Streamtype) *string { return &s.HTTPMethod }),
	kidHTTPURL:         tk("http_url", aHTTPC|aWSC, func(s *Streamtype) *string { return &s.HTTPURL }, func(s *Streamtype) **Template { return &s.HTTPURLTmpl }),
	kidRespMap:         {name: "http_resp_map", kind: kSpecial, applies: aHTTPC},
	kidAuthHeader:      sk("http_auth_header", kHeader, aHTTPC, func(s *Streamtype) *string { return &s.HTTPAuthHeader }),
	kidAuthPreamble:    sk("http_auth_preamble", kStr, aHTTPC, func(s *Streamtype) *string { return &s.HTTPAuthPreamble }),
	kidAuthHexify:      bk("auth_hexify", aHTTPC, func(s *Streamtype) *bool { return &s.AuthHexify }),
	kidMimeContentType: sk("http_mime_content_type", kStr, aHTTPC, func(s *Streamtype) *string { return &s.HTTPMimeContentType }),
	kidMultipartContentType: sk("http_multipart_content_type", kStr, aHTTPC, func(s *Streamtype) *string {
		return &s.HTTPMimeContentType
	}),
	kidWSSubprotocol:     sk("ws_subprotocol", kStr, aWSC|aH1S|aH2S, func(s *Streamtype) *string { return &s.WSSubprotocol }),
	kidWSBinary:          bk("ws_binary", aWSC|aH1S|aH2S, func(s *Streamtype) *bool { return &s.WSBinary }),
	kidWSPrioritizeReads: bk("ws_prioritize_reads", aWSC|aH1S|aH2S, func(s *Streamtype) *bool { return &s.WSPrioritizeReads }),
	kidMQTTTopic:         tk("mqtt_topic", aMQTT, func(s *Streamtype) *string { return &s.MQTTTopic }, func(s *Streamtype) **Template { return &s.MQTTTopicTmpl }),
	kidMQTTSubscribe:     tk("mqtt_subscribe", aMQTT, func(s *Streamtype) *string { return &s.MQTTSubscribe }, func(s *Streamtype) **Template { return &s.MQTTSubscribeTmpl }),
	kidMQTTKeepAlive:     uk("mqtt_keep_alive", 0, 65535, aMQTT, func(s *Streamtype) any { return &s.MQTTKeepAlive }),
	kidMQTTCleanStart:    bk("mqtt_clean_start", aMQTT, func(s *Streamtype) *bool { return &s.MQTTCleanStart }),
	kidMQTTWillTopic:     tk("mqtt_will_topic", aMQTT, func(s *Streamtype) *string { return &s.MQTTWillTopic }, func(s *Streamtype) **Template { return &s.MQTTWillTopicTmpl }),
	kidMQTTWillMessage:   tk("mqtt_will_message", aMQTT, func(s *Streamtype) *string { return &s.MQTTWillMessage }, func(s *Streamtype) **Template { return &s.MQTTWillMessageTmpl }),
	kidMQTTWillQoS:       uk("mqtt_will_qos", 0, 2, aMQTT, func(s *Streamtype) any { return &s.MQTTWillQoS }),
	kidMQTTWillRetain:    bk("mqtt_will_retain", aMQTT, func(s *Streamtype) *bool { return &s.MQTTWillRetain }),
	kidMQTTBirthTopic:    tk("mqtt_birth_topic", aMQTT, func(s *Streamtype) *string { return &s.MQTTBirthTopic }, func(s *Streamtype) **Template { return &s.MQTTBirthTopicTmpl }),
	kidMQTTBirthMessage:  tk("mqtt_birth_message", aMQTT, func(s *Streamtype) *string { return &s.MQTTBirthMessage }, func(s *Streamtype) **Template { return &s.MQTTBirthMessageTmpl }),
	kidMQTTBirthQoS:      uk("mqtt_birth_qos", 0, 2, aMQTT, func(s *Streamtype) any { return &s.MQTTBirthQoS }),
	kidMQTTBirthRetain:   bk("mqtt_birth_retain", aMQTT, func(s *Streamtype) *bool { return &s.MQTTBirthRetain }),
	kidMQTTWSPath:        sk("mqtt_ws_path", kStr, aMQTTC, func(s *Streamtype) *string { return &s.MQTTWSPath }),
	kidURLPreencoded:     {name: "url_preencoded", kind: kSpecial, applies: aHTTPC | aWSC},

	// Keys with no special treatment.
	bk("opportunistic", aClients, func(s *Streamtype) *bool { return &s.Opportunistic }),
	bk("nailed_up", aClients, func(s *Streamtype) *bool { return &s.NailedUp }),
	bk("allow_redirects", aHTTPC, func(s *Streamtype) *bool { return &s.AllowRedirects }),
	inert(bk("urgent_tx", aAll, func(s *Streamtype) *bool { return &s.UrgentTx }), "lws reserves it and never reads it; it is only stored"),
	inert(bk("urgent_rx", aAll, func(s *Streamtype) *bool { return &s.UrgentRx }), "lws reserves it and never reads it; it is only stored"),
	uk("timeout_ms", 0, math.MaxUint32, aAll, func(s *Streamtype) any { return &s.TimeoutMS }),
	uk("attr_priority", 0, 7, aAll, func(s *Streamtype) any { return &s.AttrPriority }),
	bk("attr_low_latency", aAll, func(s *Streamtype) *bool { return &s.AttrLowLatency }),
	bk("attr_high_throughput", aAll, func(s *Streamtype) *bool { return &s.AttrHighThroughput }),
	bk("attr_high_reliability", aAll, func(s *Streamtype) *bool { return &s.AttrHighReliability }),
	inert(bk("attr_low_cost", aAll, func(s *Streamtype) *bool { return &s.AttrLowCost }), "its ToS bit 0x02 is now part of the ECN field, which the kernel keeps for itself"),
	bk("perf", aClients, func(s *Streamtype) *bool { return &s.Perf }),
	sk("payload_fmt", kStr, aAll, func(s *Streamtype) *string { return &s.PayloadFmt }),
	inert(bk("swake_validity", aAll, func(s *Streamtype) *bool { return &s.SwakeValidity }), "there is no wake-from-suspend list; validity timers are ordinary timers"),
	bk("direct_proto_str", aAll, func(s *Streamtype) *bool { return &s.DirectProtoStr }),
	uk("client_buflen", 0, math.MaxUint32, aAll, func(s *Streamtype) any { return &s.ClientBuflen }),
	inert(uk("client_buflen_rxflow_on_above", 0, math.MaxUint32, aAll, func(s *Streamtype) any { return &s.ClientBuflenRxflowOnAbove }), "a proxied client's receive flow is governed by credit and backpressure (lws never used it either)"),
	inert(uk("client_buflen_rxflow_off_below", 0, math.MaxUint32, aAll, func(s *Streamtype) any { return &s.ClientBuflenRxflowOffBelow }), "a proxied client's receive flow is governed by credit and backpressure (lws never used it either)"),
	uk("http_expect", 100, 599, aHTTPC, func(s *Streamtype) any { return &s.HTTPExpect }),
	bk("http_fail_redirect", aHTTPC, func(s *Streamtype) *bool { return &s.HTTPFailRedirect }),
	sk("http_dsn_header", kHeader, aHTTPC, func(s *Streamtype) *string { return &s.HTTPDSNHeader }),
	sk("http_fwv_header", kHeader, aHTTPC, func(s *Streamtype) *string { return &s.HTTPFWVHeader }),
	sk("http_devtype_header", kHeader, aHTTPC, func(s *Streamtype) *string { return &s.HTTPDevtypeHeader }),
	bk("http_no_content_length", aHTTPC|aH1S|aH2S, func(s *Streamtype) *bool { return &s.HTTPNoContentLength }),
	bk("http_www_form_urlencoded", aHTTPC, func(s *Streamtype) *bool { return &s.HTTPWWWFormURLEncoded }),
	sk("http_multipart_name", kStr, aHTTPC, func(s *Streamtype) *string { return &s.HTTPMultipartName }),
	sk("http_multipart_filename", kStr, aHTTPC, func(s *Streamtype) *string { return &s.HTTPMultipartFilename }),
	bk("http_multipart_ss_in", aHTTPC, func(s *Streamtype) *bool { return &s.HTTPMultipartSSIn }),
	bk("http_cookies", aHTTPC|aWSC, func(s *Streamtype) *bool { return &s.HTTPCookies }),
	bk("nghttp2_quirk_end_stream", aH2C|aH3C, func(s *Streamtype) *bool { return &s.NGHTTP2QuirkEndStream }),
	inert(bk("h2q_oflow_txcr", aH2C|aH3C, func(s *Streamtype) *bool { return &s.H2QOflowTxcr }), "the Go HTTP/2 and HTTP/3 stacks treat a window overflow as a protocol error and cannot clamp it"),
	bk("long_poll", aH2C|aH3C, func(s *Streamtype) *bool { return &s.LongPoll }),
	uk("mqtt_qos", 0, 2, aMQTT, func(s *Streamtype) any { return &s.MQTTQoS }),
	bk("mqtt_retain", aMQTT, func(s *Streamtype) *bool { return &s.MQTTRetain }),
	bk("aws_iot", aMQTT, func(s *Streamtype) *bool { return &s.AWSIoT }),
	uk("ws_max_rx_message", 0, math.MaxUint32, aWSC|aH1S|aH2S, func(s *Streamtype) any { return &s.WSMaxRxMessage }),
}

var (
	stKeyIdx   map[string]int
	stKeyNames []string
)

func init() {
	stKeyIdx = make(map[string]int, len(stKeys))
	for i, k := range stKeys {
		stKeyIdx[k.name] = i
		stKeyNames = append(stKeyNames, k.name)
	}
}

// stBuild is a streamtype between pass 1 and pass 2.
type stBuild struct {
	st        *Streamtype
	p         *path
	line, col int32     // the name key
	keys      []*member // by key id; nil when absent
	meta      []*member // parallel to st.Metadata: the declaring member
	metaPath  []*path
}

func (b *stBuild) keyPath(id int) *path { return b.p.child(stKeys[id].name) }

func parseProtocol(s string) (Protocol, bool) {
	switch s {
	case "h1":
		return H1, true
	case "h2":
		return H2, true
	case "h3":
		return H3, true
	case "ws":
		return WS, true
	case "mqtt":
		return MQTT, true
	case "raw":
		return Raw, true
	}
	return 0, false
}

func (d *decoder) streamtypeEntry(m *member, p *path) {
	if !d.nameOK(m, p, "streamtype") {
		return
	}
	obj := m.val
	if obj.kind != nObject {
		d.errAt(CodeType, p, obj, "expected a streamtype object, found "+obj.describe())
		return
	}
	st := &Streamtype{Name: m.key, ClientCert: -1}
	b := &stBuild{st: st, p: p, line: m.line, col: m.col, keys: make([]*member, len(stKeys))}
	d.checkDupKeys(obj, p)
	for i := range obj.members {
		km := &obj.members[i]
		kp := d.child(p, km.key)
		id, ok := stKeyIdx[km.key]
		if !ok {
			d.unknownKey(km, kp, stKeyNames, "a streamtype")
			continue
		}
		d.streamtypeKey(b, id, km, kp)
	}
	if len(st.Name) > 31 {
		d.warnKey(CodeProxyLimit, p, m, "streamtype name is "+strconv.Itoa(len(st.Name))+" bytes; names longer than 31 bytes cannot be created through the SS proxy")
	}
	if d.sts.add(st.Name, b) {
		d.warnKey(CodeDuplicateName, p, m, "streamtype "+q(st.Name)+" defined again; this definition replaces the earlier one")
	}
}

func (d *decoder) streamtypeKey(b *stBuild, id int, km *member, kp *path) {
	st := b.st
	k := &stKeys[id]
	v := km.val
	// The two spellings of the multipart content type are one key.
	if id == kidMimeContentType || id == kidMultipartContentType {
		other := kidMimeContentType + kidMultipartContentType - id
		if o := b.keys[other]; o != nil && (o.val.kind != v.kind || o.val.text != v.text) {
			d.warnKey(CodeDuplicateKey, kp, km, q(k.name)+" and "+q(stKeys[other].name)+" are the same key and disagree; the later one wins")
		}
		b.keys[other] = nil
	}
	b.keys[id] = km
	switch k.kind {
	case kBool:
		if x, ok := d.boolean(v, kp); ok {
			*k.b(st) = x
		}
	case kUint:
		if x, ok := d.integer(v, kp, k.min, k.max); ok {
			setInt(k.u(st), x)
		}
	case kStr, kHeader, kSubst, kRef:
		s, ok := d.str(v, kp)
		if !ok {
			b.keys[id] = nil
			return
		}
		switch k.kind {
		case kHeader:
			if strings.Contains(s, "${") {
				d.warnAt(CodeNoSubstitution, kp, v, k.name+" is not substituted; \"${\" is used literally")
			}
			s = strings.TrimSuffix(s, ":")
		case kStr:
			if strings.Contains(s, "${") {
				d.warnAt(CodeNoSubstitution, kp, v, k.name+" is not substituted; \"${\" is used literally")
			}
		case kRef:
			if s == "" {
				d.errAt(CodeEmptyName, kp, v, k.name+" reference is empty")
				b.keys[id] = nil
				return
			}
		}
		*k.s(st) = s
	case kSpecial:
		switch id {
		case kidProtocol:
			s, ok := d.str(v, kp)
			if !ok {
				return
			}
			pr, ok := parseProtocol(s)
			if !ok {
				d.errAt(CodeFormat, kp, v, "unknown protocol "+q(s)+" (expected h1, h2, h3, ws, mqtt or raw)")
				return
			}
			st.Protocol = pr
		case kidViaSOCKS5:
			if s, ok := d.str(v, kp); ok && d.socks5(s, v, kp) {
				st.ViaSOCKS5Own = s
			}
		case kidPlugins:
			d.warnKey(CodeDeprecatedKey, kp, km, "\"plugins\" is deprecated and ignored")
		case kidMetadata:
			d.metadata(b, v, kp)
		case kidRespMap:
			d.respMap(st, v, kp)
		case kidOptions:
			d.options(st, v, kp)
		}
	}
}

func (d *decoder) metadata(b *stBuild, v *node, p *path) {
	st := b.st
	st.Metadata, b.meta, b.metaPath = nil, nil, nil
	d.arrayOfObjects(v, p, func(obj *node, ep *path) {
		for i := range obj.members {
			m := &obj.members[i]
			mp := d.child(ep, m.key)
			if !d.nameOK(m, mp, "metadata") {
				continue
			}
			mapping, ok := d.str(m.val, mp)
			if !ok {
				continue
			}
			item := &MetadataItem{Name: m.key, HeaderRaw: mapping, Header: strings.TrimSuffix(mapping, ":")}
			if j := st.MetadataIndex(m.key); j >= 0 {
				d.warnKey(CodeDuplicateName, mp, m, "metadata "+q(m.key)+" declared again; the later mapping replaces the earlier one")
				item.Index = j
				st.Metadata[j], b.meta[j], b.metaPath[j] = item, m, mp
				continue
			}
			if len(m.key) > 30 {
				d.warnKey(CodeProxyLimit, mp, m, "metadata name is "+strconv.Itoa(len(m.key))+" bytes; names longer than 30 bytes cannot be set through the SS proxy")
			}
			item.Index = len(st.Metadata)
			st.Metadata = append(st.Metadata, item)
			b.meta = append(b.meta, m)
			b.metaPath = append(b.metaPath, mp)
		}
	})
}

func (d *decoder) respMap(st *Streamtype, v *node, p *path) {
	st.HTTPRespMap = nil
	d.arrayOfObjects(v, p, func(obj *node, ep *path) {
		for i := range obj.members {
			m := &obj.members[i]
			mp := d.child(ep, m.key)
			status, err := strconv.Atoi(m.key)
			if err != nil || !isIntText(m.key) || status < 100 || status > 599 {
				d.errKey(CodeFormat, mp, m, "http_resp_map key "+q(m.key)+" is not an HTTP status 100..599")
				continue
			}
			state, ok := d.integer(m.val, mp, 1000, 65535)
			if !ok {
				continue
			}
			dup := false
			for _, e := range st.HTTPRespMap {
				if e.Status == status {
					dup = true
				}
			}
			if dup {
				d.warnKey(CodeDuplicateKey, mp, m, "status "+m.key+" mapped again; the first mapping wins")
				continue
			}
			st.HTTPRespMap = append(st.HTTPRespMap, RespMapEntry{Status: status, State: uint32(state)})
		}
	})
}

func (d *decoder) options(st *Streamtype, v *node, p *path) {
	st.Options = nil
	d.arrayOfObjects(v, p, func(obj *node, ep *path) {
		for i := range obj.members {
			m := &obj.members[i]
			mp := d.child(ep, m.key)
			if !d.nameOK(m, mp, "option") {
				continue
			}
			val, ok := d.str(m.val, mp)
			if !ok {
				continue
			}
			replaced := false
			for j := range st.Options {
				if st.Options[j].Name == m.key {
					d.warnKey(CodeDuplicateName, mp, m, "option "+q(m.key)+" given again; the later value replaces the earlier one")
					st.Options[j].Value = val
					replaced = true
				}
			}
			if !replaced {
				st.Options = append(st.Options, Option{Name: m.key, Value: val})
			}
		}
	})
}

// isDefault reports whether st holds the key's default value (false, 0),
// for the no-effect warning of inert keys.
func (k *stKey) isDefault(st *Streamtype) bool {
	switch {
	case k.b != nil:
		return !*k.b(st)
	case k.u != nil:
		return getInt(k.u(st)) == 0
	}
	return true
}
