// Command apicount prints how many exported identifiers each public package of the module has:
// package-level consts, vars, funcs and types, methods of exported types, and exported fields of
// exported structs and methods of exported interfaces. Packages under internal/, cmd/, examples/
// and test/ are not public API and are skipped.
//
//	go run ./scripts/apicount [dir]
package main

import (
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	counts := map[string]int{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		first := strings.Split(filepath.ToSlash(rel), "/")[0]
		switch {
		case strings.HasPrefix(d.Name(), ".") && rel != ".",
			first == "internal", first == "cmd", first == "examples", first == "test",
			first == "scripts", first == "bench", d.Name() == "testdata":
			return fs.SkipDir
		}
		n, ok, err := countDir(path)
		if err != nil {
			return err
		}
		if ok {
			counts[filepath.ToSlash(rel)] = n
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "apicount:", err)
		os.Exit(1)
	}
	names := make([]string, 0, len(counts))
	for k := range counts {
		names = append(names, k)
	}
	sort.Strings(names)
	total := 0
	for _, k := range names {
		fmt.Printf("%5d  %s\n", counts[k], k)
		total += counts[k]
	}
	fmt.Printf("%5d  total\n", total)
}

func countDir(dir string) (int, bool, error) {
	fset := token.NewFileSet()
	var files []*ast.File
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, false, err
	}
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.ParseComments)
		if err != nil {
			return 0, false, err
		}
		if f.Name.Name == "main" || hasIgnoreTag(f) {
			continue
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return 0, false, nil
	}
	p, err := doc.NewFromFiles(fset, files, "x")
	if err != nil {
		return 0, false, err
	}
	n := 0
	values := func(vs []*doc.Value) {
		for _, v := range vs {
			for _, name := range v.Names {
				if ast.IsExported(name) {
					n++
				}
			}
		}
	}
	values(p.Consts)
	values(p.Vars)
	n += len(p.Funcs)
	for _, t := range p.Types {
		n++
		values(t.Consts)
		values(t.Vars)
		n += len(t.Funcs) + len(t.Methods)
		for _, s := range t.Decl.Specs {
			ts, ok := s.(*ast.TypeSpec)
			if !ok {
				continue
			}
			switch x := ts.Type.(type) {
			case *ast.StructType:
				n += exportedFields(x.Fields)
			case *ast.InterfaceType:
				n += exportedFields(x.Methods)
			}
		}
	}
	return n, true, nil
}

func exportedFields(fl *ast.FieldList) int {
	n := 0
	for _, f := range fl.List {
		for _, name := range f.Names {
			if name.IsExported() {
				n++
			}
		}
	}
	return n
}

func hasIgnoreTag(f *ast.File) bool {
	for _, c := range f.Comments {
		if c.Pos() > f.Package {
			break
		}
		if strings.Contains(c.Text(), "go:build ignore") || strings.HasPrefix(strings.TrimSpace(c.List[0].Text), "//go:build ignore") {
			return true
		}
	}
	return false
}
