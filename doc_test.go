package ss_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/securestreams/ss"
)

// TestAliasDocsListFields: go doc shows only "type X = internal.X" for a
// type alias, so the alias's comment lists the struct's fields and names
// its methods; every field and method must be there (one added inside
// internal/ without a line here fails). Error, Unwrap and Is need no
// mention.
func TestAliasDocsListFields(t *testing.T) {
	for _, c := range []struct {
		file, alias string
		typ         reflect.Type
	}{
		{"events.go", "type Event = event.Event", reflect.TypeFor[ss.Event]()},
		{"stream.go", "type StreamStats = stream.Stats", reflect.TypeFor[ss.StreamStats]()},
		{"errors.go", "type StatusError = transport.StatusError", reflect.TypeFor[ss.StatusError]()},
		{"errors.go", "type ConnackError = transport.ConnackError", reflect.TypeFor[ss.ConnackError]()},
		{"errors.go", "type TimeoutError = stream.TimeoutError", reflect.TypeFor[ss.TimeoutError]()},
		{"wirecheck.go", "type ValueError = transport.ValueError", reflect.TypeFor[ss.ValueError]()},
		{"events.go", "type State = event.State", reflect.TypeFor[ss.State]()},
		{"events.go", "type Flags = event.Flags", reflect.TypeFor[ss.Flags]()},
		{"events.go", "type Kind = event.Kind", reflect.TypeFor[ss.Kind]()},
	} {
		src, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		text := string(src)
		i := strings.Index(text, c.alias)
		if i < 0 {
			t.Errorf("%s has no %q", c.file, c.alias)
			continue
		}
		comment := text[strings.LastIndex(text[:i], "\n\n"):i]
		if c.typ.Kind() == reflect.Struct {
			for f := range c.typ.Fields() {
				if f.IsExported() && !strings.Contains(comment, "//\t\t"+f.Name+" ") {
					t.Errorf("the doc comment of ss.%s does not list field %s", c.typ.Name(), f.Name)
				}
			}
		}
		for m := range reflect.PointerTo(c.typ).Methods() {
			switch m.Name {
			case "Error", "Unwrap", "Is":
				continue
			}
			if !strings.Contains(comment, m.Name) {
				t.Errorf("the doc comment of ss.%s does not mention method %s", c.typ.Name(), m.Name)
			}
		}
	}
}

// TestExportedNamesDocumented: every exported name of package ss has a doc
// comment of its own, including each constant and variable of a group
// (go doc ss.Creating shows it).
func TestExportedNamesDocumented(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range pkgs["ss"].Files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Name.IsExported() && d.Doc == nil && (d.Recv == nil || exportedRecv(d.Recv)) && !isErrorMethod(d) {
					t.Errorf("%s: %s has no doc comment", fset.Position(d.Pos()), d.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() && s.Doc == nil && (d.Doc == nil || len(d.Specs) > 1) {
							t.Errorf("%s: type %s has no doc comment", fset.Position(s.Pos()), s.Name)
						}
					case *ast.ValueSpec:
						own := s.Doc != nil || s.Comment != nil || (d.Doc != nil && len(d.Specs) == 1)
						for _, n := range s.Names {
							if n.IsExported() && !own {
								t.Errorf("%s: %s has no doc comment", fset.Position(n.Pos()), n)
							}
						}
					}
				}
			}
		}
	}
}

func exportedRecv(r *ast.FieldList) bool {
	t := r.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}

// isErrorMethod: Error() of an error type needs no comment of its own.
func isErrorMethod(d *ast.FuncDecl) bool { return d.Recv != nil && d.Name.Name == "Error" }

// TestStateDocsNameValues: each state constant's comment gives the lws name
// and number that State.String and the value have.
func TestStateDocsNameValues(t *testing.T) {
	src, err := os.ReadFile("events.go")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	for name, s := range map[string]ss.State{
		"Creating": ss.Creating, "Disconnected": ss.Disconnected, "Unreachable": ss.Unreachable,
		"AuthFailed": ss.AuthFailed, "Connected": ss.Connected, "Connecting": ss.Connecting,
		"Destroying": ss.Destroying, "Poll": ss.Poll, "AllRetriesFailed": ss.AllRetriesFailed,
		"QoSAckRemote": ss.QoSAckRemote, "QoSNackRemote": ss.QoSNackRemote, "QoSAckLocal": ss.QoSAckLocal,
		"QoSNackLocal": ss.QoSNackLocal, "Timeout": ss.Timeout, "ServerTxn": ss.ServerTxn,
		"ServerUpgrade": ss.ServerUpgrade, "UpstreamLinkRetry": ss.UpstreamLinkRetry,
	} {
		want := "\t// " + name + " (" + s.String() + ", " + strconv.Itoa(int(s)) + ")"
		if !strings.Contains(text, want) {
			t.Errorf("events.go: the comment of %s does not start %q", name, want)
		}
	} // States without a constant still have their lws names (relayed by an
	// lws proxy).
	for v, name := range map[ss.State]string{17: "EVENT_WAIT_CANCELLED", 19: "SINK_JOIN", 20: "SINK_PART", 1001: "USER(1001)"} {
		if v.String() != name {
			t.Errorf("State(%d).String() = %q, want %q", v, v.String(), name)
		}
	}
}
