package policy

import (
	"strconv"
	"strings"
)

// path is a JSON path built lazily: segments are only joined into text when
// a diagnostic needs it.
type path struct {
	parent *path
	key    string
	idx    int // >= 0: array index segment; -1: key segment
}

func (p *path) child(k string) *path { return &path{parent: p, key: k, idx: -1} }
func (p *path) index(i int) *path    { return &path{parent: p, idx: i} }

func (p *path) String() string {
	if p == nil {
		return ""
	}
	var segs []*path
	for q := p; q != nil; q = q.parent {
		segs = append(segs, q)
	}
	var b strings.Builder
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		if s.idx >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.idx))
			b.WriteByte(']')
			continue
		}
		if plainKey(s.key) {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.key)
		} else {
			b.WriteByte('[')
			b.WriteString(strconv.Quote(s.key))
			b.WriteByte(']')
		}
	}
	return b.String()
}

func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(isIdentByte(c) || c == '-') {
			return false
		}
	}
	return true
}
