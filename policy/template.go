package policy

import "strings"

// compileTemplate precompiles a substituting field (docs/policy-language.md §6). lookup
// returns the metadata index of a name or -1. On failure it returns the
// diagnostic code and message.
func compileTemplate(raw string, lookup func(string) int) (*Template, Code, string) {
	if raw == "" {
		return nil, "", ""
	}
	t := &Template{Raw: raw}
	lit := 0 // start of the pending literal
	i := 0
	for {
		j := strings.Index(raw[i:], "${")
		if j < 0 {
			break
		}
		j += i
		end := strings.IndexByte(raw[j+2:], '}')
		if end < 0 {
			return nil, CodeBadSubstitution, "\"${\" at byte " + itoa(j) + " has no closing '}'"
		}
		end += j + 2
		name := raw[j+2 : end]
		if name == "" {
			return nil, CodeBadSubstitution, "empty substitution \"${}\" at byte " + itoa(j)
		}
		idx := lookup(name)
		if idx < 0 {
			return nil, CodeUndeclaredMetadata, "\"${" + name + "}\" names metadata " + q(name) + " that the streamtype does not declare"
		}
		if j > lit {
			t.Parts = append(t.Parts, TemplatePart{Lit: raw[lit:j], Meta: -1})
		}
		t.Parts = append(t.Parts, TemplatePart{Lit: name, Meta: idx})
		i = end + 1
		lit = i
	}
	if lit < len(raw) {
		t.Parts = append(t.Parts, TemplatePart{Lit: raw[lit:], Meta: -1})
	}
	return t, "", ""
}

// HasSubstitutions reports whether t references any metadata.
func (t *Template) HasSubstitutions() bool {
	if t == nil {
		return false
	}
	for _, p := range t.Parts {
		if p.Meta >= 0 {
			return true
		}
	}
	return false
}
