package stream

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the module's root, seen from this package's directory.
const repoRoot = "../.."

// parseDir parses the non-test Go files of dir into fset.
func parseDir(t *testing.T, fset *token.FileSet, dir string) []*ast.File {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// TestNoProtocolNames: package stream takes per-protocol behaviour from the
// Traits the protocol registers, never from a protocol's name
// (docs/stream-states.md "Per-protocol behaviour"): no policy protocol
// constant, no comparison or switch on a Protocol, no protocol spelling.
func TestNoProtocolNames(t *testing.T) {
	names := map[string]bool{"H1": true, "H2": true, "H3": true, "WS": true, "MQTT": true, "Raw": true}
	spellings := map[string]bool{"h1": true, "h2": true, "h3": true, "ws": true, "mqtt": true, "raw": true}
	isProtocol := func(e ast.Expr) bool {
		for {
			switch x := e.(type) {
			case *ast.SelectorExpr:
				if x.Sel.Name == "Protocol" {
					return true
				}
				if id, ok := x.X.(*ast.Ident); ok && id.Name == "policy" && names[x.Sel.Name] {
					return true
				}
				e = x.X
			case *ast.CallExpr:
				e = x.Fun // p.Protocol.String()
			default:
				return false
			}
		}
	}
	fset := token.NewFileSet()
	for _, f := range parseDir(t, fset, ".") {
		ast.Inspect(f, func(n ast.Node) bool {
			bad := ""
			switch x := n.(type) {
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok && id.Name == "policy" && names[x.Sel.Name] {
					bad = "policy." + x.Sel.Name
				}
			case *ast.BinaryExpr:
				if (x.Op == token.EQL || x.Op == token.NEQ) && (isProtocol(x.X) || isProtocol(x.Y)) {
					bad = "a comparison with a protocol"
				}
			case *ast.SwitchStmt:
				if x.Tag != nil && isProtocol(x.Tag) {
					bad = "a switch on a protocol"
				}
			case *ast.BasicLit:
				if v, err := strconv.Unquote(x.Value); err == nil && x.Kind == token.STRING && spellings[strings.ToLower(v)] {
					bad = "the protocol spelling " + x.Value
				}
			}
			if bad != "" {
				t.Errorf("%s: %s in package stream: per-protocol behaviour belongs in Traits", fset.Position(n.Pos()), bad)
			}
			return true
		})
	}
}

// TestStreamStatesDocNamesExist: every Go name and file that
// docs/stream-states.md cites in backquotes exists in the code, so the page
// cannot keep describing a field, message or function that was renamed or
// removed.
func TestStreamStatesDocNamesExist(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "stream-states.md"))
	if err != nil {
		t.Fatal(err)
	}
	// Every identifier declared in the module's non-test code (types,
	// functions, methods, fields, constants, variables) and every package
	// name.
	declared := map[string]bool{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != repoRoot && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		for _, f := range parseDir(t, fset, path) {
			declared[f.Name.Name] = true
			ast.Inspect(f, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.FuncDecl:
					declared[x.Name.Name] = true
				case *ast.TypeSpec:
					declared[x.Name.Name] = true
				case *ast.ValueSpec:
					for _, id := range x.Names {
						declared[id.Name] = true
					}
				case *ast.Field:
					for _, id := range x.Names {
						declared[id.Name] = true
					}
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ident := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$`)
	checked := 0
	text := regexp.MustCompile("(?s)```.*?```").ReplaceAllString(string(doc), "") // the diagram
	for _, m := range regexp.MustCompile("`([^`\n]+)`").FindAllStringSubmatch(text, -1) {
		tok := m[1]
		switch {
		case strings.HasSuffix(tok, ".go") || strings.Contains(tok, "/"):
			found := false
			for _, p := range []string{tok, filepath.Join("internal", "stream", tok)} {
				if _, err := os.Stat(filepath.Join(repoRoot, p)); err == nil {
					found = true
				}
			}
			if !found {
				t.Errorf("docs/stream-states.md cites %s: no such file", tok)
			}
			checked++
		case ident.MatchString(tok):
			for _, part := range strings.Split(tok, ".") {
				if !declared[part] {
					t.Errorf("docs/stream-states.md cites `%s`: %s is declared nowhere in the code", tok, part)
				}
			}
			checked++
		}
	}
	if checked < 50 {
		t.Fatalf("only %d names checked: the page or the pattern changed", checked)
	}
}
