package policy

import (
	"bytes"
	"encoding/json"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var update = flag.Bool("update", false, "rewrite docs/policy.md and docs/policy.schema.json (go generate ./policy/...)")

// TestGeneratedReference fails when docs/policy.md or docs/policy.schema.json
// differ from what the key tables generate.
func TestGeneratedReference(t *testing.T) {
	md, err := renderReference()
	if err != nil {
		t.Fatal(err)
	}
	schema, err := renderSchema()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		want []byte
	}{{"../docs/policy.md", md}, {"../docs/policy.schema.json", schema}} {
		if *update {
			if err := os.WriteFile(f.name, f.want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(f.name)
		if err != nil {
			t.Fatalf("%v (run go generate ./policy/...)", err)
		}
		if !bytes.Equal(got, f.want) {
			t.Errorf("%s is out of date with the key tables: run go generate ./policy/...", f.name)
		}
	}
}

// TestKeyDocsComplete: every key of every table has a documentation entry,
// every entry documents a key that exists, and special keys carry a schema.
func TestKeyDocsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, sec := range keySections() {
		for _, k := range sec.keys {
			full := sec.prefix + k.name
			seen[full] = true
			d, ok := keyDocs[full]
			if !ok {
				t.Errorf("key %q is in the parser's key table but not in keyDocs (policy/keydocs.go): document it, then go generate ./policy/...", full)
				continue
			}
			if d.typ == "" || d.doc == "" {
				t.Errorf("keyDocs[%q]: type and doc are required", full)
			}
			if _, err := keySchema(sec, k); err != nil {
				t.Error(err)
			}
			if d.example != "" && !json.Valid([]byte(d.example)) {
				t.Errorf("keyDocs[%q].example %q is not JSON", full, d.example)
			}
		}
	}
	for full := range keyDocs {
		if !seen[full] {
			t.Errorf("keyDocs documents %q, which no key table has", full)
		}
	}
}

// TestKeyTablesMatchDecoder reads decode.go and checks that the keys each
// section's decoder switches on are exactly its table's keys.
func TestKeyTablesMatchDecoder(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "decode.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string][]stKey{
		"document":       topKeyTable,
		"retryEntry":     retryKeyTable,
		"trustStoreElem": trustStoreKeyTable,
		"authElem":       authKeyTable,
		"metricsElem":    metricsKeyTable,
	}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || tables[fn.Name.Name] == nil {
			continue
		}
		var cases []string
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			sw, ok := n.(*ast.SwitchStmt)
			if !ok {
				return true
			}
			if sel, ok := sw.Tag.(*ast.SelectorExpr); !ok || sel.Sel.Name != "key" {
				return true
			}
			for _, st := range sw.Body.List {
				for _, e := range st.(*ast.CaseClause).List {
					if lit, ok := e.(*ast.BasicLit); ok {
						s, _ := strconv.Unquote(lit.Value)
						cases = append(cases, s)
					}
				}
			}
			return true
		})
		want := keyNames(tables[fn.Name.Name])
		slices.Sort(cases)
		slices.Sort(want)
		if !slices.Equal(slices.Compact(cases), want) {
			t.Errorf("%s decodes keys %q but its key table has %q", fn.Name.Name, cases, want)
		}
		delete(tables, fn.Name.Name)
	}
	for name := range tables {
		t.Errorf("decode.go has no func %s", name)
	}
}

// TestKeyTablesDecoded: every table key is decoded, not only listed: a
// value of the wrong type is reported as an error at the key's path.
func TestKeyTablesDecoded(t *testing.T) {
	wrong := func(k stKey) string {
		if k.kind == kStr || k.kind == kRef || k.kind == kHeader || k.kind == kSubst {
			return "[]"
		}
		return `{"x": 1}`
	}
	wrap := map[string]func(string, string) (string, string){
		"": func(k, v string) (string, string) { return `{"` + k + `": ` + v + `}`, k },
		"retry.": func(k, v string) (string, string) {
			return `{"retry": [{"r": {"` + k + `": ` + v + `}}]}`, "retry[0].r." + k
		},
		"trust_stores.": func(k, v string) (string, string) {
			return `{"trust_stores": [{"name": "t", "stack": ["c"], "` + k + `": ` + v + `}]}`, "trust_stores[0]." + k
		},
		"auth.": func(k, v string) (string, string) {
			return `{"auth": [{"name": "a", "` + k + `": ` + v + `}]}`, "auth[0]." + k
		},
		"metrics.": func(k, v string) (string, string) {
			return `{"metrics": [{"name": "m", "` + k + `": ` + v + `}]}`, "metrics[0]." + k
		},
	}
	for _, sec := range keySections() {
		w := wrap[sec.prefix]
		if w == nil {
			continue // streamtype keys: TestKeys covers every stKeys entry
		}
		for _, k := range sec.keys {
			if sec.prefix == "" && k.name == "$schema" {
				continue
			}
			if sec.prefix == "trust_stores." && k.name == "name" {
				continue // a non-string name makes the element shape B
			}
			doc, path := w(k.name, wrong(k))
			_, diags, _ := Parse([]byte(doc), Options{})
			found := false
			for _, d := range diags {
				if d.Path == path && d.Severity == SeverityError {
					found = true
				}
			}
			if !found {
				t.Errorf("%s%s: a wrong-typed value gave no error at %s: %v", sec.prefix, k.name, path, diags)
			}
		}
	}
}

// toJSONValue converts a parsed node into the value a JSON decoder gives.
func toJSONValue(n *node) any {
	switch n.kind {
	case nObject:
		m := map[string]any{}
		for _, mb := range n.members {
			m[mb.key] = toJSONValue(mb.val)
		}
		return m
	case nArray:
		a := make([]any, len(n.elems))
		for i, e := range n.elems {
			a[i] = toJSONValue(e)
		}
		return a
	case nString:
		return n.text
	case nNumber:
		return json.Number(n.text)
	case nTrue:
		return true
	case nFalse:
		return false
	}
	return nil
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	var doc any
	dec := json.NewDecoder(bytes.NewReader(Schema()))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("policy.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("policy.schema.json")
	if err != nil {
		t.Fatalf("the generated schema does not compile: %v", err)
	}
	return s
}

// repoPolicies returns every policy in the repository: *.json files and
// ```json blocks of markdown files that look like policies (an object).
func repoPolicies(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	block := regexp.MustCompile("(?s)```jsonc?\n(.*?)\n```")
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		switch {
		case strings.HasSuffix(path, ".schema.json"):
		case strings.HasSuffix(path, ".json"):
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out[path] = b
		case strings.HasSuffix(path, ".md"):
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for i, m := range block.FindAllSubmatch(b, -1) {
				out[path+"#"+strconv.Itoa(i)] = m[1]
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSchemaValidatesRepoPolicies: every policy in the repository that the
// parser accepts without a warning validates against the schema, and the
// "streamtypes" mistake (and other warnings) are rejected by both.
func TestSchemaValidatesRepoPolicies(t *testing.T) {
	s := compileSchema(t)
	n := 0
	for name, data := range repoPolicies(t) {
		root, syn := parseJSON(data)
		if syn != nil {
			continue // test inputs that are meant to be broken
		}
		_, diags, _ := Parse(data, Options{})
		clean := true
		for _, d := range diags {
			clean = clean && d.Code == CodeNoEffect // keys stored without effect are valid
		}
		if !clean {
			continue // covered by the parser's own diagnostics
		}
		n++
		if err := s.Validate(toJSONValue(root)); err != nil {
			t.Errorf("%s: parses cleanly but fails the schema: %v", name, err)
		}
	}
	if n < 2 {
		t.Errorf("only %d clean policies found in the repository; the walk is broken", n)
	}
}

func TestSchemaRejectsMistakes(t *testing.T) {
	s := compileSchema(t)
	for _, doc := range []string{
		`{"streamtypes": [{"x": {"endpoint": "e.test", "http_method": "GET"}}]}`,
		`{"s": [{"x": {"endpiont": "e.test"}}]}`,
		`{"s": [{"x": {"protocol": "h4"}}]}`,
		`{"s": [{"x": {"port": 70000}}]}`,
		`{"s": [{"x": {"tls": "yes"}}]}`,
		`{"retry": [{"r": {"jitterpc": 101}}]}`,
		`{"s": [{"x": {"http_resp_map": [{"abc": 1000}]}}]}`,
		`{"trust_stores": [{"name": "t"}]}`,
	} {
		root, syn := parseJSON([]byte(doc))
		if syn != nil {
			t.Fatal(syn)
		}
		if err := s.Validate(toJSONValue(root)); err == nil {
			t.Errorf("schema accepts %s", doc)
		}
		if _, diags, _ := Parse([]byte(doc), Options{}); len(diags) == 0 {
			t.Errorf("parser accepts %s without a diagnostic", doc)
		}
	}
	_, diags, _ := Parse([]byte(`{"streamtypes": []}`), Options{})
	if len(diags) != 1 || !strings.Contains(diags[0].Msg, `did you mean "s"?`) {
		t.Errorf("streamtypes: diagnostics %v, want one unknown-key suggesting \"s\"", diags)
	}
	if _, _, err := Parse([]byte(`{"streamtypes": []}`), Options{Strict: true}); err == nil {
		t.Error("strict mode accepts an unknown top-level key")
	}
	if _, diags, err := Parse([]byte(`{"$schema": "./policy.schema.json"}`), Options{Strict: true}); err != nil || len(diags) != 0 {
		t.Errorf("$schema: %v %v", diags, err)
	}
}
