package policy

import (
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
)

// decoder turns the JSON tree into typed values (pass 1) and then resolves
// names and validates across fields (pass 2, resolve.go).
type decoder struct {
	opts  Options
	diags []Diagnostic
	pol   *Policy

	viaNode *node  // top-level via-socks5 value
	paths   []path // slab for path segments

	badCerts map[string]bool // certs entries that failed to decode

	retries named[*Retry]
	certs   named[*Cert]
	stores  named[*storeBuild]
	auths   named[*authBuild]
	metrics named[*Metrics]
	sts     named[*stBuild]
}

// child returns the path of key k under p, allocated from a slab.
func (d *decoder) child(p *path, k string) *path {
	q := d.newPath()
	q.parent, q.key, q.idx = p, k, -1
	return q
}

// index returns the path of element i of the array at p.
func (d *decoder) index(p *path, i int) *path {
	q := d.newPath()
	q.parent, q.idx = p, i
	return q
}

func (d *decoder) newPath() *path {
	if len(d.paths) == 0 {
		d.paths = make([]path, 128)
	}
	q := &d.paths[0]
	d.paths = d.paths[1:]
	return q
}

func newDecoder(opts Options) *decoder {
	return &decoder{opts: opts, pol: &Policy{SchemaVersion: 1}}
}

// named is an ordered list of named objects. A repeated name replaces the
// earlier object in its position (docs/policy-language.md §5.3).
type named[T any] struct {
	items []T
	idx   map[string]int
}

func (n *named[T]) add(name string, v T) (replaced bool) {
	if n.idx == nil {
		n.idx = make(map[string]int)
	}
	if i, ok := n.idx[name]; ok {
		n.items[i] = v
		return true
	}
	n.idx[name] = len(n.items)
	n.items = append(n.items, v)
	return false
}

func (n *named[T]) get(name string) (T, bool) {
	i, ok := n.idx[name]
	if !ok {
		var zero T
		return zero, false
	}
	return n.items[i], true
}

// Diagnostics helpers. "At" variants point at a value, "Key" variants at a key.

func (d *decoder) add(sev Severity, code Code, p *path, line, col int32, msg string) {
	d.diags = append(d.diags, Diagnostic{Severity: sev, Code: code, Path: p.String(), Line: int(line), Col: int(col), Msg: msg})
}

func (d *decoder) errAt(code Code, p *path, n *node, msg string) {
	d.add(SeverityError, code, p, n.line, n.col, msg)
}

func (d *decoder) warnAt(code Code, p *path, n *node, msg string) {
	d.add(SeverityWarning, code, p, n.line, n.col, msg)
}

func (d *decoder) errKey(code Code, p *path, m *member, msg string) {
	d.add(SeverityError, code, p, m.line, m.col, msg)
}

func (d *decoder) warnKey(code Code, p *path, m *member, msg string) {
	d.add(SeverityWarning, code, p, m.line, m.col, msg)
}

func q(s string) string { return strconv.Quote(s) }

// Typed value helpers (docs/policy-language.md §2.4).

func (d *decoder) str(n *node, p *path) (string, bool) {
	if n.kind == nString {
		return n.text, true
	}
	d.errAt(CodeType, p, n, "expected a string, found "+n.describe())
	return "", false
}

func (d *decoder) boolean(n *node, p *path) (bool, bool) {
	switch n.kind {
	case nTrue:
		return true, true
	case nFalse:
		return false, true
	case nNumber:
		switch n.text {
		case "0":
			d.warnAt(CodeCoerced, p, n, "0 accepted as false for a boolean key; write false")
			return false, true
		case "1":
			d.warnAt(CodeCoerced, p, n, "1 accepted as true for a boolean key, but lws would have read it as false (it sets flags only for a literal true); write true")
			return true, true
		}
	}
	d.errAt(CodeType, p, n, "expected true or false, found "+n.describe())
	return false, false
}

func isIntText(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i >= len(s) {
		return false
	}
	if s[i] == '0' {
		return i+1 == len(s)
	}
	for ; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func rangeText(min, max int64) string {
	return strconv.FormatInt(min, 10) + ".." + strconv.FormatInt(max, 10)
}

func (d *decoder) integer(n *node, p *path, min, max int64) (int64, bool) {
	coerced := false
	switch n.kind {
	case nNumber:
		if n.nonInt {
			d.errAt(CodeNonInteger, p, n, "expected an integer in "+rangeText(min, max)+", found "+n.describe())
			return 0, false
		}
	case nString:
		if !isIntText(n.text) {
			d.errAt(CodeType, p, n, "expected an integer in "+rangeText(min, max)+", found "+n.describe())
			return 0, false
		}
		coerced = true
	default:
		d.errAt(CodeType, p, n, "expected an integer in "+rangeText(min, max)+", found "+n.describe())
		return 0, false
	}
	v, err := strconv.ParseInt(n.text, 10, 64)
	if err != nil || v < min || v > max {
		d.errAt(CodeRange, p, n, "integer "+n.text+" is out of range "+rangeText(min, max))
		return 0, false
	}
	if coerced {
		d.warnAt(CodeCoerced, p, n, "integer given as a string ("+q(n.text)+"); write "+n.text)
	}
	return v, true
}

// checkDupKeys warns about keys repeated in one object (docs/policy-language.md §2.3).
func (d *decoder) checkDupKeys(obj *node, p *path) {
	ms := obj.members
	if len(ms) < 2 {
		return
	}
	if len(ms) <= 16 {
		for i := 1; i < len(ms); i++ {
			for j := 0; j < i; j++ {
				if ms[j].key == ms[i].key {
					d.warnKey(CodeDuplicateKey, d.child(p, ms[i].key), &ms[i], "key "+q(ms[i].key)+" repeated in one object (first at "+posText(ms[j].line, ms[j].col)+")")
					break
				}
			}
		}
		return
	}
	seen := make(map[string]int, len(ms))
	for i := range ms {
		if j, ok := seen[ms[i].key]; ok {
			d.warnKey(CodeDuplicateKey, d.child(p, ms[i].key), &ms[i], "key "+q(ms[i].key)+" repeated in one object (first at "+posText(ms[j].line, ms[j].col)+")")
			continue
		}
		seen[ms[i].key] = i
	}
}

func posText(line, col int32) string {
	if line == 0 {
		return "the base policy"
	}
	return "line " + strconv.Itoa(int(line)) + ", column " + strconv.Itoa(int(col))
}

func (d *decoder) unknownKey(m *member, p *path, known []string, where string) {
	msg := "unknown key " + q(m.key) + " in " + where + " (ignored)"
	s := suggest(m.key, known)
	if s == "" {
		if alt, ok := keyMistakes[m.key]; ok && slices.Contains(known, alt) {
			s = alt
		}
	}
	if s != "" {
		msg += "; did you mean " + q(s) + "?"
	}
	d.warnKey(CodeUnknownKey, p, m, msg)
}

// document is pass 1 over the top-level object.
func (d *decoder) document(root *node) {
	d.checkDupKeys(root, nil)
	for i := range root.members {
		m := &root.members[i]
		p := d.child(nil, m.key)
		v := m.val
		switch m.key {
		case "$schema": // for editors (docs/policy.schema.json); no meaning here
			d.str(v, p)
		case "release":
			if s, ok := d.str(v, p); ok {
				d.pol.Release = s
			}
		case "product":
			if s, ok := d.str(v, p); ok {
				d.pol.Product = s
			}
		case "schema-version":
			d.schemaVersion(v, p)
		case "via-socks5":
			if s, ok := d.str(v, p); ok && d.socks5(s, v, p) {
				d.pol.ViaSOCKS5 = s
				d.viaNode = v
			}
		case "retry":
			d.namedObjects(v, p, d.retryEntry)
		case "certs":
			d.namedObjects(v, p, d.certEntry)
		case "trust_stores":
			d.arrayOfObjects(v, p, d.trustStoreElem)
		case "auth":
			d.arrayOfObjects(v, p, d.authElem)
		case "metrics":
			d.arrayOfObjects(v, p, d.metricsElem)
		case "s":
			d.namedObjects(v, p, d.streamtypeEntry)
		default:
			d.unknownKey(m, p, topKeys, "the policy")
		}
	}
}

func (d *decoder) schemaVersion(v *node, p *path) {
	n, ok := d.integer(v, p, 0, math.MaxInt64)
	if !ok {
		return
	}
	if n > supportedSchema {
		d.errAt(CodeSchemaVersion, p, v, "policy needs parser schema "+strconv.FormatInt(n, 10)+", this parser supports "+strconv.Itoa(supportedSchema))
		return
	}
	d.pol.SchemaVersion = int(n)
}

// socks5 checks the [user[:password]@]host:port syntax.
func (d *decoder) socks5(s string, v *node, p *path) bool {
	if msg := checkSOCKS5(s); msg != "" {
		d.errAt(CodeFormat, p, v, "via-socks5 "+q(s)+": "+msg+" (expected [user[:password]@]host:port)")
		return false
	}
	return true
}

func checkSOCKS5(s string) string {
	hostport := s
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		user := s[:at]
		if c := strings.IndexByte(user, ':'); c >= 0 {
			user = user[:c]
		}
		if user == "" {
			return "empty user name before '@'"
		}
		hostport = s[at+1:]
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "not host:port"
	}
	if host == "" {
		return "empty host"
	}
	if strings.Contains(host, ":") && !strings.HasPrefix(hostport, "[") {
		return "IPv6 host must be in brackets"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || !isIntText(port) {
		return "port must be 1..65535"
	}
	return ""
}

// arrayOfObjects calls fn for every element of an array of objects.
func (d *decoder) arrayOfObjects(v *node, p *path, fn func(obj *node, p *path)) {
	if v.kind != nArray {
		d.errAt(CodeType, p, v, "expected an array of objects, found "+v.describe())
		return
	}
	for i, e := range v.elems {
		ep := d.index(p, i)
		if e.kind != nObject {
			d.errAt(CodeType, ep, e, "expected an object, found "+e.describe())
			continue
		}
		fn(e, ep)
	}
}

// namedObjects calls fn for every member of every element of an array of
// objects (the retry, certs and s sections).
func (d *decoder) namedObjects(v *node, p *path, fn func(m *member, p *path)) {
	d.arrayOfObjects(v, p, func(obj *node, ep *path) {
		for i := range obj.members {
			m := &obj.members[i]
			fn(m, d.child(ep, m.key))
		}
	})
}

// nameOK reports an empty object name.
func (d *decoder) nameOK(m *member, p *path, what string) bool {
	if m.key == "" {
		d.errKey(CodeEmptyName, p, m, what+" name is empty")
		return false
	}
	return true
}

func (d *decoder) retryEntry(m *member, p *path) {
	if !d.nameOK(m, p, "retry policy") {
		return
	}
	obj := m.val
	if obj.kind != nObject {
		d.errAt(CodeType, p, obj, "expected a retry policy object, found "+obj.describe())
		return
	}
	r := &Retry{Name: m.key, JitterPct: 30}
	d.checkDupKeys(obj, p)
	var ping *member
	for i := range obj.members {
		km := &obj.members[i]
		kp := d.child(p, km.key)
		v := km.val
		switch km.key {
		case "backoff":
			r.Backoff = nil
			if v.kind != nArray {
				d.errAt(CodeType, kp, v, "expected an array of integers (ms), found "+v.describe())
				continue
			}
			if len(v.elems) > 64 {
				d.errAt(CodeTooMany, kp, v, "backoff has "+strconv.Itoa(len(v.elems))+" entries, at most 64 are allowed")
			}
			for j, e := range v.elems {
				if x, ok := d.integer(e, d.index(kp, j), 0, math.MaxInt32); ok {
					r.Backoff = append(r.Backoff, uint32(x))
				}
			}
		case "conceal":
			if x, ok := d.integer(v, kp, 0, 65535); ok {
				r.Conceal = uint16(x)
			}
		case "jitterpc":
			if x, ok := d.integer(v, kp, 0, 100); ok {
				r.JitterPct = uint8(x)
			}
		case "svalidping":
			if x, ok := d.integer(v, kp, 0, 65535); ok {
				r.SValidPing = uint16(x)
				ping = km
			}
		case "svalidhup":
			if x, ok := d.integer(v, kp, 0, 65535); ok {
				r.SValidHup = uint16(x)
			}
		default:
			d.unknownKey(km, kp, retryKeys, "a retry policy")
		}
	}
	if r.SValidPing > 0 && r.SValidHup == 0 && ping != nil {
		d.warnKey(CodeNotApplicable, d.child(p, "svalidping"), ping, "svalidping has no effect without svalidhup (validity checking is off)")
	}
	if d.retries.add(r.Name, r) {
		d.warnKey(CodeDuplicateName, p, m, "retry policy "+q(r.Name)+" defined again; this definition replaces the earlier one")
	}
}

func (d *decoder) certEntry(m *member, p *path) {
	if !d.nameOK(m, p, "certs entry") {
		return
	}
	s, ok := d.str(m.val, p)
	if !ok {
		return
	}
	c, msg := decodeCert(m.key, s)
	if c == nil {
		d.errAt(CodeBadCert, p, m.val, msg)
		if d.badCerts == nil {
			d.badCerts = map[string]bool{}
		}
		d.badCerts[m.key] = true
		return
	}
	if d.certs.add(c.Name, c) {
		d.warnKey(CodeDuplicateName, p, m, "certs entry "+q(c.Name)+" defined again; this definition replaces the earlier one")
	}
}

// storeBuild is a trust store between pass 1 and pass 2.
type storeBuild struct {
	name      string
	p         *path // path of the store (the element or the member)
	line, col int32 // position of the name
	stack     *node // the stack array
	stackPath *path
}

func (d *decoder) trustStoreElem(obj *node, p *path) {
	var nameM *member
	for i := range obj.members {
		if obj.members[i].key == "name" {
			nameM = &obj.members[i]
		}
	}
	if nameM == nil { // shape B: every member is a store
		for i := range obj.members {
			m := &obj.members[i]
			mp := d.child(p, m.key)
			if !d.nameOK(m, mp, "trust store") {
				continue
			}
			if m.val.kind != nArray {
				d.errAt(CodeType, mp, m.val, "expected an array of certs names, found "+m.val.describe())
				continue
			}
			d.addStore(&storeBuild{name: m.key, p: mp, line: m.line, col: m.col, stack: m.val, stackPath: mp})
		}
		return
	}
	// Shape A: {"name": ..., "stack": [...]}.
	d.checkDupKeys(obj, p)
	sb := &storeBuild{p: p}
	nameOK := false
	for i := range obj.members {
		m := &obj.members[i]
		mp := d.child(p, m.key)
		switch m.key {
		case "name":
			if s, ok := d.str(m.val, mp); ok {
				if s == "" {
					d.errAt(CodeEmptyName, mp, m.val, "trust store name is empty")
					continue
				}
				sb.name, sb.line, sb.col = s, m.val.line, m.val.col
				nameOK = true
			}
		case "stack":
			if m.val.kind != nArray {
				d.errAt(CodeType, mp, m.val, "expected an array of certs names, found "+m.val.describe())
				sb.stack = nil
				continue
			}
			sb.stack, sb.stackPath = m.val, mp
		default:
			d.unknownKey(m, mp, trustStoreKeys, "a trust store")
		}
	}
	if !hasKey(obj, "stack") {
		d.errAt(CodeMissingKey, p, obj, "trust store has no \"stack\"")
	}
	if nameOK && sb.stack != nil {
		d.addStore(sb)
	}
}

func hasKey(obj *node, key string) bool {
	for i := range obj.members {
		if obj.members[i].key == key {
			return true
		}
	}
	return false
}

func (d *decoder) addStore(sb *storeBuild) {
	if d.stores.add(sb.name, sb) {
		d.add(SeverityWarning, CodeDuplicateName, sb.p, sb.line, sb.col, "trust store "+q(sb.name)+" defined again; this definition replaces the earlier one")
	}
}

// authBuild is an auth scheme between pass 1 and pass 2.
type authBuild struct {
	a      *Auth
	stNode *node
	stPath *path
}

func (d *decoder) authElem(obj *node, p *path) {
	d.checkDupKeys(obj, p)
	ab := &authBuild{a: &Auth{}}
	var nameM *member
	nameOK := true
	for i := range obj.members {
		m := &obj.members[i]
		mp := d.child(p, m.key)
		v := m.val
		switch m.key {
		case "name":
			nameM = m
			s, ok := d.str(v, mp)
			if ok && s == "" {
				d.errAt(CodeEmptyName, mp, v, "auth name is empty")
				ok = false
			}
			nameOK = ok
			ab.a.Name = s
		case "type":
			s, ok := d.str(v, mp)
			if !ok {
				continue
			}
			ab.a.TypeName = s
			switch s {
			case "sigv4":
				ab.a.Type = AuthSigV4
			case "lwa":
				ab.a.Type = AuthLWA
			case "jwt":
				ab.a.Type = AuthJWT
			default:
				ab.a.Type = AuthToken
				d.warnAt(CodeUnknownValue, mp, v, "unknown auth type "+q(s)+" (expected \"sigv4\", \"lwa\" or \"jwt\"); token auth is used")
			}
		case "streamtype":
			s, ok := d.str(v, mp)
			if !ok {
				continue
			}
			if s == "" {
				d.errAt(CodeEmptyName, mp, v, "auth streamtype reference is empty")
				continue
			}
			ab.a.StreamtypeName, ab.stNode, ab.stPath = s, v, mp
		case "blob":
			if x, ok := d.integer(v, mp, 0, 3); ok {
				ab.a.Blob = uint8(x)
			}
		default:
			d.unknownKey(m, mp, authKeys, "an auth scheme")
		}
	}
	if nameM == nil {
		d.warnAt(CodeMissingKey, p, obj, "auth scheme has no \"name\"; it can never be used and is ignored")
		return
	}
	if !nameOK {
		return
	}
	if d.auths.add(ab.a.Name, ab) {
		d.warnAt(CodeDuplicateName, d.child(p, "name"), nameM.val, "auth scheme "+q(ab.a.Name)+" defined again; this definition replaces the earlier one")
	}
}

// metricsNoEffect is why metrics policies have no effect.
const metricsNoEffect = "there is no metrics exporter; per-stream counters are in Stream.Stats (the policies are kept in Policy.Metrics)"

func (d *decoder) metricsElem(obj *node, p *path) {
	d.checkDupKeys(obj, p)
	d.warnAt(CodeNoEffect, p, obj, "metrics policies have no effect in this implementation: "+metricsNoEffect)
	mt := &Metrics{}
	var nameM *member
	nameOK := true
	for i := range obj.members {
		m := &obj.members[i]
		mp := d.child(p, m.key)
		v := m.val
		switch m.key {
		case "name":
			nameM = m
			s, ok := d.str(v, mp)
			if ok && s == "" {
				d.errAt(CodeEmptyName, mp, v, "metrics policy name is empty")
				ok = false
			}
			nameOK = ok
			mt.Name = s
		case "us_schedule":
			if x, ok := d.integer(v, mp, 0, math.MaxInt64); ok {
				mt.USSchedule = uint64(x)
			}
		case "us_halflife":
			if x, ok := d.integer(v, mp, 0, math.MaxUint32); ok {
				mt.USHalflife = uint32(x)
			}
		case "min_outlier":
			if x, ok := d.integer(v, mp, 0, 255); ok {
				mt.MinOutlier = uint8(x)
			}
		case "report":
			if s, ok := d.str(v, mp); ok {
				mt.Report = s
			}
		default:
			d.unknownKey(m, mp, metricsKeys, "a metrics policy")
		}
	}
	if nameM == nil {
		d.errAt(CodeMissingKey, p, obj, "metrics policy has no \"name\"")
		return
	}
	if !nameOK {
		return
	}
	if d.metrics.add(mt.Name, mt) {
		d.warnAt(CodeDuplicateName, d.child(p, "name"), nameM.val, "metrics policy "+q(mt.Name)+" defined again; this definition replaces the earlier one")
	}
}
