package policy

import (
	"errors"
	"fmt"
)

// ErrNilBase is returned by ApplyOverlay for a nil base policy.
var ErrNilBase = errors.New("ss: policy: overlay on a nil base policy")

// overlaySections are the known top-level keys an overlay may not contain.
var overlaySections = map[string]bool{
	"release": true, "product": true, "via-socks5": true, "retry": true,
	"certs": true, "trust_stores": true, "auth": true, "metrics": true,
}

// ApplyOverlay applies a policy fragment to base and returns the resulting
// new policy (docs/policy-language.md §8). base is not modified. The fragment may contain
// only the s section (and schema-version). An existing streamtype (exact
// name) is patched key by key, array-valued keys replaced as a whole; a new
// streamtype is added at the end. References resolve against the base plus
// the fragment, and the whole result is validated again. Diagnostics point
// into the fragment; errors caused by unchanged base values have line 0, and
// warnings about unchanged base values are not repeated.
func ApplyOverlay(base *Policy, fragment []byte, opts Options) (*Policy, []Diagnostic, error) {
	if base == nil {
		return nil, nil, ErrNilBase
	}
	if msg := checkNoNil(base); msg != "" {
		return nil, nil, fmt.Errorf("%w: base policy: %s", ErrInvalid, msg)
	}
	root, syn := parseJSON(fragment)
	if syn != nil {
		diags := []Diagnostic{*syn}
		return nil, diags, errorOf(diags)
	}
	d := newDecoder(opts)
	d.checkDupKeys(root, nil)
	var patches []*member
	for i := range root.members {
		m := &root.members[i]
		p := d.child(nil, m.key)
		switch {
		case m.key == "s":
			d.arrayOfObjects(m.val, p, func(obj *node, ep *path) {
				for j := range obj.members {
					pm := &obj.members[j]
					// Patching drops repeated keys, so report them here;
					// new streamtypes are checked when decoded.
					if pm.val.kind == nObject && base.Streamtype(pm.key) != nil {
						d.checkDupKeys(pm.val, d.child(ep, pm.key))
					}
					patches = append(patches, pm)
				}
			})
		case m.key == "schema-version":
			d.schemaVersion(m.val, p)
		case m.key == "$schema": // for editors; no meaning here
			d.str(m.val, p)
		case overlaySections[m.key]:
			d.errKey(CodeOverlaySection, p, m, "an overlay may only contain streamtypes (\"s\"), not "+q(m.key))
		default:
			d.unknownKey(m, p, topKeys, "the overlay")
		}
	}
	merged := encodePolicy(base)
	sObj := streamtypesObject(merged)
	for _, fm := range patches {
		patchStreamtype(sObj, fm)
	}
	d.document(merged)
	d.resolve()
	// Warnings about values taken unchanged from the base were reported
	// when the base was loaded.
	kept := d.diags[:0]
	for _, dg := range d.diags {
		if dg.Severity == SeverityWarning && dg.Line == 0 {
			continue
		}
		kept = append(kept, dg)
	}
	d.diags = kept
	return d.finish()
}

// streamtypesObject returns the single object inside the encoded policy's
// s array, creating it when the policy has no streamtypes.
func streamtypesObject(root *node) *node {
	for i := range root.members {
		if root.members[i].key == "s" {
			return root.members[i].val.elems[0]
		}
	}
	o := &node{kind: nObject}
	root.members = append(root.members, member{key: "s", val: arrNode(o)})
	return o
}

func canonicalKey(k string) string {
	if k == "http_multipart_content_type" {
		return "http_mime_content_type"
	}
	return k
}

func patchStreamtype(sObj *node, fm *member) {
	for i := range sObj.members {
		bm := &sObj.members[i]
		if bm.key != fm.key {
			continue
		}
		if bm.val.kind != nObject || fm.val.kind != nObject {
			*bm = *fm
			return
		}
		out := &node{kind: nObject, line: fm.val.line, col: fm.val.col}
		out.members = append(out.members, bm.val.members...)
		for _, pm := range fm.val.members {
			ck := canonicalKey(pm.key)
			kept := out.members[:0]
			for _, om := range out.members {
				if canonicalKey(om.key) != ck {
					kept = append(kept, om)
				}
			}
			out.members = append(kept, pm)
		}
		bm.val = out
		bm.line, bm.col = fm.line, fm.col
		return
	}
	sObj.members = append(sObj.members, *fm)
}
