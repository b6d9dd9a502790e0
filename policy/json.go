package policy

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds the policy JSON tokenizer and tree builder. It accepts
// RFC 8259 JSON plus exactly the two leniencies of docs/policy-language.md §2.2 ('#'
// comments to the end of the line, one trailing comma before ']') and records
// the line and byte column of every value and key.

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 256

type nodeKind uint8

const (
	nObject nodeKind = iota + 1
	nArray
	nString
	nNumber
	nTrue
	nFalse
	nNull
)

func (k nodeKind) String() string {
	switch k {
	case nObject:
		return "object"
	case nArray:
		return "array"
	case nString:
		return "string"
	case nNumber:
		return "number"
	case nTrue, nFalse:
		return "boolean"
	case nNull:
		return "null"
	}
	return "value"
}

// node is one JSON value with its source position. Synthesised nodes (from
// an encoded policy) have line 0.
type node struct {
	kind      nodeKind
	nonInt    bool // number with a fraction or exponent
	line, col int32
	text      string // string value (unescaped) or number literal
	members   []member
	elems     []*node
}

// member is one key/value pair of an object.
type member struct {
	key       string
	line, col int32
	val       *node
}

// describe returns a short description of n for messages.
func (n *node) describe() string {
	switch n.kind {
	case nString:
		if len(n.text) > 40 {
			return "string " + strconv.Quote(n.text[:37]+"...")
		}
		return "string " + strconv.Quote(n.text)
	case nNumber:
		return "number " + n.text
	case nTrue:
		return "true"
	case nFalse:
		return "false"
	case nNull:
		return "null"
	}
	return n.kind.String()
}

type scanner struct {
	data      []byte
	pos       int
	line      int
	lineStart int
	depth     int
	err       *Diagnostic

	// Allocation helpers: nodes come from slabs, and the members and
	// elements of open containers collect on shared stacks so that each
	// container gets one exactly sized slice.
	slab   []node
	mstack []member
	estack []*node
}

func (s *scanner) newNode(kind nodeKind, line, col int32) *node {
	if len(s.slab) == 0 {
		s.slab = make([]node, 64)
	}
	n := &s.slab[0]
	s.slab = s.slab[1:]
	n.kind, n.line, n.col = kind, line, col
	return n
}

// internKey returns the canonical string for a known key, without
// allocating, or a new string.
func internKey(b []byte) string {
	if k, ok := knownKeys[string(b)]; ok {
		return k
	}
	return string(b)
}

var knownKeys = map[string]string{}

func init() {
	for _, list := range [][]string{stKeyNames, topKeys, retryKeys, authKeys, metricsKeys, trustStoreKeys} {
		for _, k := range list {
			knownKeys[k] = k
		}
	}
}

// parseJSON builds the tree of a whole policy document. On failure it
// returns the single syntax, truncated or trailing-data diagnostic.
func parseJSON(data []byte) (*node, *Diagnostic) {
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		data = data[3:]
	}
	s := &scanner{data: data, line: 1}
	s.skipSpace()
	if s.pos >= len(s.data) {
		s.fail(CodeTruncated, "input ends before the top-level object starts (empty document)")
		return nil, s.err
	}
	if s.data[s.pos] != '{' {
		s.fail(CodeSyntax, "a policy must be a JSON object starting with '{', found "+s.quoteChar())
		return nil, s.err
	}
	root := s.value()
	if s.err != nil {
		return nil, s.err
	}
	s.skipSpace()
	if s.pos < len(s.data) {
		s.fail(CodeTrailingData, "unexpected "+s.quoteChar()+" after the end of the top-level object")
		return nil, s.err
	}
	return root, nil
}

func (s *scanner) col() int32 { return int32(s.pos - s.lineStart + 1) }

func (s *scanner) fail(code Code, msg string) {
	if s.err == nil {
		s.err = &Diagnostic{Severity: SeverityError, Code: code, Line: s.line, Col: int(s.col()), Msg: msg}
	}
}

func (s *scanner) failAt(code Code, line int, col int32, msg string) {
	if s.err == nil {
		s.err = &Diagnostic{Severity: SeverityError, Code: code, Line: line, Col: int(col), Msg: msg}
	}
}

func (s *scanner) truncated(what string) {
	s.fail(CodeTruncated, "input ends "+what)
}

func (s *scanner) quoteChar() string {
	if s.pos >= len(s.data) {
		return "end of input"
	}
	c := s.data[s.pos]
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	r, _ := utf8.DecodeRune(s.data[s.pos:])
	if r == utf8.RuneError {
		return "byte 0x" + strconv.FormatUint(uint64(c), 16)
	}
	return strconv.QuoteRune(r)
}

// skipSpace skips JSON whitespace and '#' comments.
func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\r':
			s.pos++
		case '\n':
			s.pos++
			s.line++
			s.lineStart = s.pos
		case '#':
			for s.pos < len(s.data) && s.data[s.pos] != '\n' {
				s.pos++
			}
		default:
			return
		}
	}
}

func (s *scanner) value() *node {
	s.skipSpace()
	if s.pos >= len(s.data) {
		s.truncated("where a value is expected")
		return nil
	}
	line, col := int32(s.line), s.col()
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == '"':
		str, ok := s.str()
		if !ok {
			return nil
		}
		n := s.newNode(nString, line, col)
		n.text = str
		return n
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true", nTrue)
	case c == 'f':
		return s.literal("false", nFalse)
	case c == 'n':
		return s.literal("null", nNull)
	default:
		s.fail(CodeSyntax, "unexpected "+s.quoteChar()+", expected a value")
		return nil
	}
}

func (s *scanner) literal(word string, kind nodeKind) *node {
	line, col := int32(s.line), s.col()
	for i := 0; i < len(word); i++ {
		if s.pos+i >= len(s.data) {
			s.pos += i
			s.truncated("inside the literal " + word)
			return nil
		}
		if s.data[s.pos+i] != word[i] {
			s.fail(CodeSyntax, "invalid literal, expected "+word)
			return nil
		}
	}
	s.pos += len(word)
	if s.pos < len(s.data) && isIdentByte(s.data[s.pos]) {
		s.failAt(CodeSyntax, int(line), col, "invalid literal, expected "+word)
		return nil
	}
	return s.newNode(kind, line, col)
}

func isIdentByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (s *scanner) number() *node {
	line, col := int32(s.line), s.col()
	start := s.pos
	d := s.data
	nonInt := false
	if d[s.pos] == '-' {
		s.pos++
	}
	if s.pos >= len(d) {
		s.truncated("inside a number")
		return nil
	}
	switch {
	case d[s.pos] == '0':
		s.pos++
	case isDigit(d[s.pos]):
		for s.pos < len(d) && isDigit(d[s.pos]) {
			s.pos++
		}
	default:
		s.fail(CodeSyntax, "invalid number: expected a digit after '-'")
		return nil
	}
	if s.pos < len(d) && d[s.pos] == '.' {
		nonInt = true
		s.pos++
		if s.pos >= len(d) {
			s.truncated("inside a number")
			return nil
		}
		if !isDigit(d[s.pos]) {
			s.fail(CodeSyntax, "invalid number: expected a digit after '.'")
			return nil
		}
		for s.pos < len(d) && isDigit(d[s.pos]) {
			s.pos++
		}
	}
	if s.pos < len(d) && (d[s.pos] == 'e' || d[s.pos] == 'E') {
		nonInt = true
		s.pos++
		if s.pos < len(d) && (d[s.pos] == '+' || d[s.pos] == '-') {
			s.pos++
		}
		if s.pos >= len(d) {
			s.truncated("inside a number")
			return nil
		}
		if !isDigit(d[s.pos]) {
			s.fail(CodeSyntax, "invalid number: expected a digit in the exponent")
			return nil
		}
		for s.pos < len(d) && isDigit(d[s.pos]) {
			s.pos++
		}
	}
	if s.pos < len(d) && (isIdentByte(d[s.pos]) || d[s.pos] == '.') {
		s.fail(CodeSyntax, "invalid number")
		return nil
	}
	n := s.newNode(nNumber, line, col)
	n.nonInt, n.text = nonInt, string(d[start:s.pos])
	return n
}

// str reads a string starting at the opening quote. Keys are interned.
func (s *scanner) str() (string, bool) { return s.strKey(false) }

func (s *scanner) strKey(key bool) (string, bool) {
	d := s.data
	s.pos++ // opening quote
	start := s.pos
	// Fast path: no escapes, no control characters, ASCII only.
	i := s.pos
	for i < len(d) {
		c := d[i]
		if c == '"' {
			s.pos = i + 1
			if key {
				return internKey(d[start:i]), true
			}
			return string(d[start:i]), true
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			break
		}
		i++
	}
	buf := make([]byte, 0, i-start+16)
	buf = append(buf, d[start:i]...)
	s.pos = i
	for {
		if s.pos >= len(d) {
			s.truncated("inside a string")
			return "", false
		}
		c := d[s.pos]
		switch {
		case c == '"':
			s.pos++
			return string(buf), true
		case c == '\\':
			s.pos++
			if s.pos >= len(d) {
				s.truncated("inside a string escape")
				return "", false
			}
			e := d[s.pos]
			s.pos++
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := s.hex4()
				if !ok {
					return "", false
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(utf8.RuneError)
					if s.pos+1 < len(d) && d[s.pos] == '\\' && d[s.pos+1] == 'u' {
						save := s.pos
						s.pos += 2
						var ok2 bool
						r2, ok2 = s.hex4()
						if !ok2 {
							return "", false
						}
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							r = dec
						} else {
							s.pos = save
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				}
				buf = utf8.AppendRune(buf, r)
			default:
				s.pos -= 2
				s.fail(CodeSyntax, "invalid escape sequence \\"+string(rune(e))+" in string")
				return "", false
			}
		case c < 0x20:
			s.fail(CodeSyntax, "control character in string (use an escape such as \\n)")
			return "", false
		case c >= 0x80:
			r, size := utf8.DecodeRune(d[s.pos:])
			if r == utf8.RuneError && size <= 1 {
				s.fail(CodeSyntax, "invalid UTF-8 in string")
				return "", false
			}
			buf = append(buf, d[s.pos:s.pos+size]...)
			s.pos += size
		default:
			buf = append(buf, c)
			s.pos++
		}
	}
}

func (s *scanner) hex4() (rune, bool) {
	var r rune
	for k := 0; k < 4; k++ {
		if s.pos >= len(s.data) {
			s.truncated("inside a \\u escape")
			return 0, false
		}
		c := s.data[s.pos]
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			s.fail(CodeSyntax, "invalid \\u escape: expected 4 hex digits")
			return 0, false
		}
		r = r<<4 | rune(v)
		s.pos++
	}
	return r, true
}

func (s *scanner) object() *node {
	n := s.newNode(nObject, int32(s.line), s.col())
	s.depth++
	if s.depth > maxDepth {
		s.fail(CodeSyntax, "nesting deeper than "+strconv.Itoa(maxDepth)+" levels")
		return nil
	}
	defer func() { s.depth-- }()
	s.pos++
	s.skipSpace()
	if s.pos >= len(s.data) {
		s.truncated("inside an object")
		return nil
	}
	if s.data[s.pos] == '}' {
		s.pos++
		return n
	}
	base := len(s.mstack)
	defer func() { s.mstack = s.mstack[:base] }()
	finish := func() *node {
		n.members = append([]member(nil), s.mstack[base:]...)
		return n
	}
	afterComma := false
	for {
		s.skipSpace()
		if s.pos >= len(s.data) {
			s.truncated("inside an object")
			return nil
		}
		if c := s.data[s.pos]; c != '"' {
			switch {
			case c == '}' && afterComma:
				s.fail(CodeSyntax, "trailing comma before '}' (only arrays accept a trailing comma)")
			case c == ']':
				s.fail(CodeSyntax, "']' cannot close an object")
			default:
				s.fail(CodeSyntax, "unexpected "+s.quoteChar()+", expected a string key")
			}
			return nil
		}
		kline, kcol := int32(s.line), s.col()
		key, ok := s.strKey(true)
		if !ok {
			return nil
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			s.truncated("inside an object")
			return nil
		}
		if s.data[s.pos] != ':' {
			s.fail(CodeSyntax, "unexpected "+s.quoteChar()+", expected ':' after the key")
			return nil
		}
		s.pos++
		v := s.value()
		if v == nil {
			return nil
		}
		s.mstack = append(s.mstack, member{key: key, line: kline, col: kcol, val: v})
		s.skipSpace()
		if s.pos >= len(s.data) {
			s.truncated("inside an object")
			return nil
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			afterComma = true
		case '}':
			s.pos++
			return finish()
		case ']':
			s.fail(CodeSyntax, "']' cannot close an object")
			return nil
		default:
			s.fail(CodeSyntax, "unexpected "+s.quoteChar()+", expected ',' or '}'")
			return nil
		}
	}
}

func (s *scanner) array() *node {
	n := s.newNode(nArray, int32(s.line), s.col())
	s.depth++
	if s.depth > maxDepth {
		s.fail(CodeSyntax, "nesting deeper than "+strconv.Itoa(maxDepth)+" levels")
		return nil
	}
	defer func() { s.depth-- }()
	s.pos++
	s.skipSpace()
	if s.pos >= len(s.data) {
		s.truncated("inside an array")
		return nil
	}
	if s.data[s.pos] == ']' {
		s.pos++
		return n
	}
	base := len(s.estack)
	defer func() { s.estack = s.estack[:base] }()
	finish := func() *node {
		n.elems = append([]*node(nil), s.estack[base:]...)
		return n
	}
	for {
		v := s.value()
		if v == nil {
			return nil
		}
		s.estack = append(s.estack, v)
		s.skipSpace()
		if s.pos >= len(s.data) {
			s.truncated("inside an array")
			return nil
		}
		switch s.data[s.pos] {
		case ']':
			s.pos++
			return finish()
		case ',':
			s.pos++
			s.skipSpace()
			if s.pos >= len(s.data) {
				s.truncated("inside an array")
				return nil
			}
			if s.data[s.pos] == ']' { // the accepted trailing comma
				s.pos++
				return finish()
			}
		case '}':
			s.fail(CodeSyntax, "'}' cannot close an array")
			return nil
		default:
			s.fail(CodeSyntax, "unexpected "+s.quoteChar()+", expected ',' or ']'")
			return nil
		}
	}
}
