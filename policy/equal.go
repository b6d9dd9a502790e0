package policy

import (
	"crypto/x509"
	"reflect"
)

// Equal reports whether a and b describe the same policy: a deep comparison
// of every field that compares trust-store pools with (*x509.CertPool).Equal
// (reflect.DeepEqual cannot compare pools). A policy parsed from a file, the
// one generated from it by sspolicy gen, and one rebuilt by an empty overlay
// are Equal.
func Equal(a, b *Policy) bool {
	return Diff(a, b) == ""
}

// Diff returns the Go path of the first difference between a and b (for
// example "p.Streamtypes[3].Port"), or "" when they are Equal.
func Diff(a, b *Policy) string {
	return deepDiff(reflect.ValueOf(a), reflect.ValueOf(b), map[[2]uintptr]bool{}, "p")
}

var poolType = reflect.TypeFor[*x509.CertPool]()

func deepDiff(a, b reflect.Value, seen map[[2]uintptr]bool, at string) string {
	if a.IsValid() != b.IsValid() || (a.IsValid() && a.Type() != b.Type()) {
		return at
	}
	if !a.IsValid() {
		return ""
	}
	if a.Type() == poolType && a.CanInterface() {
		pa, pb := a.Interface().(*x509.CertPool), b.Interface().(*x509.CertPool)
		if (pa == nil || pb == nil) && pa != pb || pa != nil && !pa.Equal(pb) {
			return at
		}
		return ""
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice:
		if a.IsNil() != b.IsNil() {
			return at
		}
		if a.IsNil() {
			return ""
		}
		if a.Kind() != reflect.Slice || a.Len() > 0 {
			key := [2]uintptr{a.Pointer(), b.Pointer()}
			if a.Kind() != reflect.Slice {
				if seen[key] {
					return ""
				}
				seen[key] = true
			}
		}
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		return deepDiff(a.Elem(), b.Elem(), seen, at)
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if d := deepDiff(a.Field(i), b.Field(i), seen, at+"."+a.Type().Field(i).Name); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return at + " (length)"
		}
		for i := 0; i < a.Len(); i++ {
			if d := deepDiff(a.Index(i), b.Index(i), seen, at+"["+itoa(i)+"]"); d != "" {
				return d
			}
		}
		return ""
	case reflect.Map:
		if a.Len() != b.Len() {
			return at + " (length)"
		}
		it := a.MapRange()
		for it.Next() {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() {
				return at + " (key)"
			}
			if d := deepDiff(it.Value(), bv, seen, at+"[key]"); d != "" {
				return d
			}
		}
		return ""
	}
	if !scalarEqual(a, b) {
		return at
	}
	return ""
}

func scalarEqual(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Func:
		return a.Pointer() == b.Pointer()
	case reflect.String:
		return a.String() == b.String()
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.Float32, reflect.Float64:
		return a.Float() == b.Float()
	case reflect.Complex64, reflect.Complex128:
		return a.Complex() == b.Complex()
	case reflect.Chan, reflect.UnsafePointer:
		return a.Pointer() == b.Pointer()
	}
	return false
}

// checkNoNil reports nil entries in a hand-built policy, which ApplyOverlay,
// MarshalJSON and Generate cannot walk.
func checkNoNil(p *Policy) string {
	if p == nil {
		return "nil policy"
	}
	for i, r := range p.Retry {
		if r == nil {
			return "Retry[" + itoa(i) + "] is nil"
		}
	}
	for i, c := range p.Certs {
		if c == nil {
			return "Certs[" + itoa(i) + "] is nil"
		}
	}
	for i, ts := range p.TrustStores {
		if ts == nil {
			return "TrustStores[" + itoa(i) + "] is nil"
		}
		for j, c := range ts.Stack {
			if c == nil {
				return "TrustStores[" + itoa(i) + "].Stack[" + itoa(j) + "] is nil"
			}
		}
	}
	for i, a := range p.Auth {
		if a == nil {
			return "Auth[" + itoa(i) + "] is nil"
		}
	}
	for i, m := range p.Metrics {
		if m == nil {
			return "Metrics[" + itoa(i) + "] is nil"
		}
	}
	for i, st := range p.Streamtypes {
		if st == nil {
			return "Streamtypes[" + itoa(i) + "] is nil"
		}
		for j, m := range st.Metadata {
			if m == nil {
				return "Streamtypes[" + itoa(i) + "].Metadata[" + itoa(j) + "] is nil"
			}
		}
	}
	return ""
}
