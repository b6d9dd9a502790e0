package policy

import (
	"sort"
	"strconv"
	"strings"
)

// resolve is pass 2: it builds the policy lists, resolves every reference
// (docs/policy-language.md §5) and runs the cross-field checks of §7.
func (d *decoder) resolve() {
	p := d.pol
	p.Retry = d.retries.items
	p.Certs = d.certs.items
	p.Metrics = d.metrics.items
	for _, sb := range d.stores.items {
		p.TrustStores = append(p.TrustStores, d.resolveStore(sb))
	}
	for _, b := range d.sts.items {
		p.Streamtypes = append(p.Streamtypes, b.st)
	}
	for _, ab := range d.auths.items {
		if ab.stNode != nil {
			if b, ok := d.sts.get(ab.a.StreamtypeName); ok {
				ab.a.Streamtype = b.st
			} else {
				d.errAt(CodeUnknownRef, ab.stPath, ab.stNode, "auth "+q(ab.a.Name)+" names streamtype "+q(ab.a.StreamtypeName)+", which does not exist"+hint(ab.a.StreamtypeName, d.sts.idx))
			}
		}
		p.Auth = append(p.Auth, ab.a)
	}
	for _, b := range d.sts.items {
		d.resolveStreamtype(b)
	}
	d.checkRideshare()
	d.checkMQTTShared()
}

func (d *decoder) resolveStore(sb *storeBuild) *TrustStore {
	ts := &TrustStore{Name: sb.name}
	if len(sb.stack.elems) == 0 {
		d.errAt(CodeEmptyStack, sb.stackPath, sb.stack, "trust store "+q(sb.name)+" has no certificates")
	}
	for i, e := range sb.stack.elems {
		ep := d.index(sb.stackPath, i)
		name, ok := d.str(e, ep)
		if !ok {
			continue
		}
		if name == "" {
			d.errAt(CodeEmptyName, ep, e, "trust store entry is empty")
			continue
		}
		c, ok := d.certs.get(name)
		if !ok {
			if !d.badCerts[name] { // a bad entry was reported where it is defined
				d.errAt(CodeUnknownRef, ep, e, "trust store "+q(sb.name)+" lists certs entry "+q(name)+", which does not exist"+hint(name, d.certs.idx))
			}
			continue
		}
		if c.Kind != KindCertificate {
			d.errAt(CodeWrongKind, ep, e, "certs entry "+q(name)+" is a private key; a trust store needs certificates")
			continue
		}
		dup := false
		for _, o := range ts.Stack {
			dup = dup || o == c
		}
		if dup {
			d.warnAt(CodeDuplicateName, ep, e, "certs entry "+q(name)+" listed twice in trust store "+q(sb.name)+" (kept once)")
			continue
		}
		ts.Stack = append(ts.Stack, c)
	}
	if len(ts.Stack) > 0 {
		ts.Pool = NewStaticPool(ts.Stack...)
	}
	return ts
}

// isTLSURL reports an endpoint URL whose scheme implies TLS.
func isTLSURL(endpoint string) bool {
	e := strings.ToLower(endpoint)
	return strings.HasPrefix(e, "https://") || strings.HasPrefix(e, "wss://") || strings.HasPrefix(e, "mqtts://")
}

func (d *decoder) keyWarn(b *stBuild, id int, code Code, msg string) {
	d.warnKey(code, b.keyPath(id), b.keys[id], msg)
}

func (d *decoder) valErr(b *stBuild, id int, code Code, msg string) {
	d.errAt(code, b.keyPath(id), b.keys[id].val, msg)
}

func (d *decoder) nameErr(b *stBuild, code Code, msg string) {
	d.add(SeverityError, code, b.p, b.line, b.col, msg)
}

func (d *decoder) nameWarn(b *stBuild, code Code, msg string) {
	d.add(SeverityWarning, code, b.p, b.line, b.col, msg)
}

func roleText(p Protocol, server bool) string {
	if server {
		return p.String() + " server"
	}
	return p.String() + " client"
}

func (d *decoder) resolveStreamtype(b *stBuild) {
	st := b.st
	has := func(id int) bool { return b.keys[id] != nil }
	mask := roleMask(st.Protocol, st.Server)
	client := !st.Server

	// Applicability (docs/policy.md), after the whole object is read.
	for id, km := range b.keys {
		if km == nil {
			continue
		}
		k := &stKeys[id]
		if k.applies&mask == 0 {
			msg := k.name + " has no effect on " + roleText(st.Protocol, st.Server) + " streamtypes (ignored)"
			if id == kidHTTPMethod && st.Protocol == WS && client {
				msg = "http_method has no effect on a ws client: the websocket handshake is always a GET (ignored)"
			}
			d.keyWarn(b, id, CodeNotApplicable, msg)
			continue
		}
		if (id == kidWSBinary || id == kidWSPrioritizeReads) && st.Server && st.WSSubprotocol == "" {
			d.keyWarn(b, id, CodeNotApplicable, k.name+" has no effect on a server without ws_subprotocol (ignored)")
		}
		if k.noEffect != "" && !k.isDefault(st) {
			d.keyWarn(b, id, CodeNoEffect, k.name+" has no effect in this implementation: "+k.noEffect)
		}
	}
	if st.Server && st.Protocol == Raw && strings.HasPrefix(st.Endpoint, "!") {
		d.keyWarn(b, kidEndpoint, CodeNoEffect, "endpoint "+q(st.Endpoint)+" has no effect in this implementation: raw servers cannot share a listener (a raw connection carries nothing to choose a streamtype by), so Serve fails")
	}
	if (has(kidAuthPreamble) || has(kidAuthHexify)) && st.HTTPAuthHeader == "" && mask&aHTTPC != 0 {
		for _, id := range []int{kidAuthPreamble, kidAuthHexify} {
			if has(id) {
				d.keyWarn(b, id, CodeNotApplicable, stKeys[id].name+" has no effect without http_auth_header (ignored)")
			}
		}
	}

	// References (docs/policy-language.md §5.1).
	if has(kidRetry) {
		if r, ok := d.retries.get(st.RetryName); ok {
			st.Retry = r
		} else {
			d.valErr(b, kidRetry, CodeUnknownRef, "no retry policy named "+q(st.RetryName)+hint(st.RetryName, d.retries.idx))
		}
	}
	if has(kidTrustStore) {
		if sb, ok := d.stores.get(st.TrustStoreName); ok {
			st.TrustStore = d.pol.TrustStores[d.stores.idx[sb.name]]
		} else {
			d.valErr(b, kidTrustStore, CodeUnknownRef, "no trust store named "+q(st.TrustStoreName)+hint(st.TrustStoreName, d.stores.idx))
		}
	}
	if has(kidUseAuth) {
		if ab, ok := d.auths.get(st.UseAuthName); ok {
			st.UseAuth = ab.a
		} else {
			d.valErr(b, kidUseAuth, CodeUnknownRef, "no auth scheme named "+q(st.UseAuthName)+hint(st.UseAuthName, d.auths.idx))
		}
	}
	if has(kidRideshare) {
		if rb, ok := d.sts.get(st.RideshareName); ok {
			st.Rideshare = rb.st
			if rb.st.Protocol > H3 {
				d.valErr(b, kidRideshare, CodeConflict, "rideshare target "+q(st.RideshareName)+" is "+rb.st.Protocol.String()+"; it must be h1, h2 or h3")
			}
		} else {
			d.valErr(b, kidRideshare, CodeUnknownRef, "no streamtype named "+q(st.RideshareName)+hint(st.RideshareName, d.sts.idx))
		}
	}
	st.ServerCert = d.certRef(b, kidServerCert, st.ServerCertName, KindCertificate)
	st.ServerKey = d.certRef(b, kidServerKey, st.ServerKeyName, KindPrivateKey)
	sigv4 := st.UseAuth != nil && st.UseAuth.Type == AuthSigV4
	if has(kidMQTTWSPath) && !strings.HasPrefix(st.MQTTWSPath, "/") {
		d.valErr(b, kidMQTTWSPath, CodeFormat, "mqtt_ws_path "+q(st.MQTTWSPath)+" must start with \"/\"")
	}
	mqttWS := st.Protocol == MQTT && st.MQTTWSPath != ""
	if sigv4 && mask&(aHTTPC|aWSC) == 0 && client && !mqttWS {
		d.keyWarn(b, kidUseAuth, CodeNotApplicable, "a sigv4 auth scheme has no effect on "+roleText(st.Protocol, st.Server)+" streamtypes")
	}
	for _, id := range []int{kidAWSRegion, kidAWSService} {
		if !has(id) {
			continue
		}
		name := *stKeys[id].s(st)
		if st.MetadataIndex(name) < 0 {
			d.valErr(b, id, CodeUndeclaredMetadata, stKeys[id].name+" names metadata "+q(name)+" that the streamtype does not declare")
		}
		if !sigv4 {
			d.keyWarn(b, id, CodeNotApplicable, stKeys[id].name+" has no effect unless use_auth names a sigv4 auth scheme")
		}
	}

	if has(kidURLPreencoded) {
		d.urlPreencoded(b)
	}

	// Templates (docs/policy-language.md §6).
	for id := range stKeys {
		k := &stKeys[id]
		if k.kind != kSubst || !has(id) {
			continue
		}
		t, code, msg := compileTemplate(*k.s(st), st.MetadataIndex)
		if code != "" {
			d.valErr(b, id, code, k.name+": "+msg)
			continue
		}
		*k.t(st) = t
	}

	// Metadata mappings on protocols without headers.
	if st.Protocol == MQTT || st.Protocol == Raw {
		for i, item := range st.Metadata {
			if item.HeaderRaw != "" {
				d.warnAt(CodeNotApplicable, b.metaPath[i], b.meta[i].val, "a header mapping has no effect on a "+st.Protocol.String()+" streamtype")
			}
		}
	}

	if client {
		d.clientRules(b)
	} else {
		d.serverRules(b)
	}

	// Proxy buffer rules.
	on, off := st.ProxyBuflenRxflowOnAbove, st.ProxyBuflenRxflowOffBelow
	if on != 0 && off != 0 && on < off {
		d.valErr(b, kidProxyOnAbove, CodeConflict, "proxy_buflen_rxflow_on_above ("+utoa(on)+") is below proxy_buflen_rxflow_off_below ("+utoa(off)+")")
	}
	buflen := st.ProxyBuflen
	if buflen == 0 {
		buflen = 32768
	}
	if on > buflen {
		d.keyWarn(b, kidProxyOnAbove, CodeConflict, "proxy_buflen_rxflow_on_above ("+utoa(on)+") is above the proxy buffer size ("+utoa(buflen)+"); flow control never engages")
	}

	// Effective values.
	st.ViaSOCKS5 = st.ViaSOCKS5Own
	if st.ViaSOCKS5 == "" {
		st.ViaSOCKS5 = d.pol.ViaSOCKS5
	}
}

// hint suggests a close name for an unknown reference, noting that lws
// would have matched a longer name by prefix.
func hint(ref string, names map[string]int) string {
	known := make([]string, 0, len(names))
	prefix := ""
	for n := range names {
		known = append(known, n)
		if strings.HasPrefix(n, ref) && (prefix == "" || n < prefix) {
			prefix = n
		}
	}
	if prefix != "" {
		return "; did you mean " + q(prefix) + "? (names match exactly; lws would have matched it by prefix)"
	}
	sort.Strings(known)
	if s := suggest(ref, known); s != "" {
		return "; did you mean " + q(s) + "?"
	}
	return ""
}

func utoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func (d *decoder) certRef(b *stBuild, id int, name string, kind CertKind) *Cert {
	if b.keys[id] == nil {
		return nil
	}
	c, ok := d.certs.get(name)
	if !ok {
		if !d.badCerts[name] {
			d.valErr(b, id, CodeUnknownRef, "no certs entry named "+q(name)+hint(name, d.certs.idx))
		}
		return nil
	}
	if c.Kind != kind {
		d.valErr(b, id, CodeWrongKind, "certs entry "+q(name)+" is a "+c.Kind.String()+"; "+stKeys[id].name+" needs a "+kind.String())
		return nil
	}
	return c
}

func (d *decoder) clientRules(b *stBuild) {
	st := b.st
	has := func(id int) bool { return b.keys[id] != nil }
	if st.Endpoint == "" && !st.LocalSink {
		if has(kidEndpoint) {
			d.valErr(b, kidEndpoint, CodeMissingKey, "client streamtype needs a non-empty endpoint")
		} else {
			d.nameErr(b, CodeMissingKey, "client streamtype "+q(st.Name)+" has no \"endpoint\"")
		}
	}
	tls := st.TLS || isTLSURL(st.Endpoint) || st.Protocol == H3
	if st.Protocol == H3 && !st.TLS {
		if has(kidTLS) {
			d.keyWarn(b, kidTLS, CodeConflict, "h3 (QUIC) always uses TLS; TLS is used anyway")
		} else {
			d.nameWarn(b, CodeConflict, "h3 (QUIC) always uses TLS; \"tls\" is not set but TLS is used anyway")
		}
	}
	if !tls {
		if has(kidTrustStore) {
			d.keyWarn(b, kidTrustStore, CodeNotApplicable, "tls_trust_store has no effect without TLS")
		}
		if has(kidClientCert) {
			d.keyWarn(b, kidClientCert, CodeNotApplicable, "client_cert has no effect without TLS")
		}
	}
	if st.Protocol <= H3 && st.HTTPMethod == "" {
		switch {
		case st.LocalSink && !has(kidHTTPMethod):
			// A process-local sink makes no requests: no warning.
		case has(kidHTTPMethod):
			d.warnAt(CodeMissingKey, b.keyPath(kidHTTPMethod), b.keys[kidHTTPMethod].val, "http_method is empty; GET is used")
		default:
			d.nameWarn(b, CodeMissingKey, "HTTP client streamtype "+q(st.Name)+" has no \"http_method\"; GET is used")
		}
		st.HTTPMethod = "GET"
	}
	if st.Protocol == MQTT && st.MQTTTopic == "" && st.MQTTSubscribe == "" && !st.LocalSink {
		d.nameWarn(b, CodeNotApplicable, "mqtt client streamtype "+q(st.Name)+" has neither mqtt_topic nor mqtt_subscribe; it can do nothing")
	}
}

func (d *decoder) serverRules(b *stBuild) {
	st := b.st
	has := func(id int) bool { return b.keys[id] != nil }
	switch st.Protocol {
	case H1, H2, Raw:
	default:
		msg := "a server must be h1, h2 or raw, not " + st.Protocol.String()
		if st.Protocol == WS {
			msg += " (use h1/h2 with ws_subprotocol for websocket servers)"
		}
		if has(kidProtocol) {
			d.valErr(b, kidProtocol, CodeConflict, msg)
		} else {
			d.nameErr(b, CodeConflict, msg)
		}
	}
	unix := strings.HasPrefix(st.Endpoint, "+")
	if name, ok := strings.CutPrefix(st.Endpoint, "!"); ok {
		lb, found := d.sts.get(name)
		switch {
		case !found || !lb.st.Server:
			d.valErr(b, kidEndpoint, CodeUnknownRef, "endpoint "+q(st.Endpoint)+": no server streamtype named "+q(name))
		case lb.st == st:
			d.valErr(b, kidEndpoint, CodeConflict, "endpoint "+q(st.Endpoint)+" names the streamtype itself")
		default:
			st.ListenerOf = lb.st
		}
	} else if !unix && !has(kidPort) {
		d.nameErr(b, CodeMissingKey, "server streamtype "+q(st.Name)+" has no \"port\"")
	}
	switch {
	case st.TLS:
		if !has(kidServerCert) {
			d.keyErrOrName(b, kidTLS, CodeMissingKey, "a TLS server needs \"server_cert\"")
		}
		if !has(kidServerKey) {
			d.keyErrOrName(b, kidTLS, CodeMissingKey, "a TLS server needs \"server_key\"")
		}
	case has(kidServerCert) || has(kidServerKey):
		id := kidServerCert
		if !has(id) {
			id = kidServerKey
		}
		d.valErr(b, id, CodeConflict, "server_cert and server_key need \"tls\": true")
	}
	if st.ServerCert != nil && st.ServerKey != nil && !keyMatches(st.ServerCert.Certificate, st.ServerKey.PrivateKey) {
		d.valErr(b, kidServerKey, CodeKeyMismatch, "server_key "+q(st.ServerKeyName)+" does not match the public key of server_cert "+q(st.ServerCertName))
	}
	if st.Protocol == H2 && !st.TLS {
		d.nameWarn(b, CodeConflict, "an h2 server without TLS is served as HTTP/1.1 only")
	}
}

func (d *decoder) keyErrOrName(b *stBuild, id int, code Code, msg string) {
	if km := b.keys[id]; km != nil {
		d.errKey(code, b.keyPath(id), km, msg)
		return
	}
	d.nameErr(b, code, msg)
}

// checkRideshare finds rideshare loops and chains the proxy cannot carry.
func (d *decoder) checkRideshare() {
	target := map[*Streamtype]bool{}
	for _, b := range d.sts.items {
		if b.st.Rideshare != nil {
			target[b.st.Rideshare] = true
		}
	}
	for _, b := range d.sts.items {
		st := b.st
		if st.Rideshare == nil {
			continue
		}
		seen := map[*Streamtype]bool{st: true}
		names := []string{st.Name}
		cycle := false
		for c := st.Rideshare; c != nil; c = c.Rideshare {
			if seen[c] {
				cycle = true
				break
			}
			seen[c] = true
			names = append(names, c.Name)
		}
		if cycle {
			d.valErr(b, kidRideshare, CodeRideshareCycle, "rideshare chain loops: "+strings.Join(names, " -> ")+" -> ...")
			continue
		}
		if target[st] {
			continue // checked from the head of its chain
		}
		joined := strings.Join(names, ",")
		if len(names) > 3 || len(joined) >= 128 {
			d.warnAt(CodeProxyLimit, b.keyPath(kidRideshare), b.keys[kidRideshare].val, "rideshare chain "+joined+" has "+strconv.Itoa(len(names))+" streamtypes ("+strconv.Itoa(len(joined))+" bytes); the SS proxy carries at most 3 and under 128 bytes")
		}
	}
}

// mqttConnectKeys are the connect-time keys compared between streamtypes
// that share a broker connection.
var mqttConnectKeys = []int{kidMQTTKeepAlive, kidMQTTCleanStart, kidMQTTWillTopic, kidMQTTWillMessage, kidMQTTWillQoS, kidMQTTWillRetain, kidMQTTBirthTopic, kidMQTTBirthMessage, kidMQTTBirthQoS, kidMQTTBirthRetain, kidMQTTWSPath}

func mqttConnectValue(st *Streamtype, id int) string {
	switch id {
	case kidMQTTKeepAlive:
		return strconv.Itoa(int(st.MQTTKeepAlive))
	case kidMQTTCleanStart:
		return strconv.FormatBool(st.MQTTCleanStart)
	case kidMQTTWillTopic:
		return q(st.MQTTWillTopic)
	case kidMQTTWillMessage:
		return q(st.MQTTWillMessage)
	case kidMQTTWillQoS:
		return strconv.Itoa(int(st.MQTTWillQoS))
	case kidMQTTWillRetain:
		return strconv.FormatBool(st.MQTTWillRetain)
	case kidMQTTBirthTopic:
		return q(st.MQTTBirthTopic)
	case kidMQTTBirthMessage:
		return q(st.MQTTBirthMessage)
	case kidMQTTBirthQoS:
		return strconv.Itoa(int(st.MQTTBirthQoS))
	case kidMQTTBirthRetain:
		return strconv.FormatBool(st.MQTTBirthRetain)
	case kidMQTTWSPath:
		return q(st.MQTTWSPath)
	}
	return ""
}

func (d *decoder) checkMQTTShared() {
	first := map[string]*stBuild{}
	for _, b := range d.sts.items {
		st := b.st
		if st.Protocol != MQTT || st.Server {
			continue
		}
		id := st.Endpoint + "\x00" + strconv.Itoa(int(st.Port)) + "\x00" + strconv.FormatBool(st.TLS) + "\x00" + st.TrustStoreName + "\x00" + strconv.Itoa(st.ClientCert)
		f, ok := first[id]
		if !ok {
			first[id] = b
			continue
		}
		for _, kid := range mqttConnectKeys {
			mine, theirs := mqttConnectValue(st, kid), mqttConnectValue(f.st, kid)
			if mine == theirs {
				continue
			}
			msg := "streamtypes " + q(f.st.Name) + " and " + q(st.Name) + " share a broker connection but disagree on " + stKeys[kid].name + " (" + theirs + " vs " + mine + ")"
			if b.keys[kid] != nil {
				d.keyWarn(b, kid, CodeMQTTSharedMismatch, msg)
			} else {
				d.nameWarn(b, CodeMQTTSharedMismatch, msg)
			}
		}
	}
}

// urlPreencoded applies url_preencoded: an array of declared metadata names
// whose values are substituted into endpoint and http_url verbatim
// (docs/security-validation.md).
func (d *decoder) urlPreencoded(b *stBuild) {
	st, km := b.st, b.keys[kidURLPreencoded]
	kp := b.keyPath(kidURLPreencoded)
	if km.val.kind != nArray {
		d.errAt(CodeType, kp, km.val, "expected an array of metadata names, found "+km.val.describe())
		return
	}
	for i, e := range km.val.elems {
		ep := d.index(kp, i)
		name, ok := d.str(e, ep)
		if !ok {
			continue
		}
		j := st.MetadataIndex(name)
		if j < 0 {
			d.errAt(CodeUndeclaredMetadata, ep, e, "url_preencoded names metadata "+q(name)+" that the streamtype does not declare")
			continue
		}
		st.Metadata[j].PreEncoded = true
	}
}
