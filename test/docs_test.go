package test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// userDocs returns the markdown files users read: README.md, docs/, the
// examples' READMEs and test/TESTING.md.
func userDocs(t *testing.T) []string {
	t.Helper()
	files := []string{"../README.md", "TESTING.md"}
	for _, pat := range []string{"../docs/*.md", "../examples/*/README.md", "../cmd/*/README.md"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	return files
}

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	htmlID    = regexp.MustCompile(`id="([^"]+)"`)
)

// slug is GitHub's anchor for a heading.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors returns the anchors a markdown file defines.
func anchors(data []byte) map[string]bool {
	out := map[string]bool{}
	for _, m := range mdHeading.FindAllSubmatch(data, -1) {
		out[slug(string(m[1]))] = true
	}
	for _, m := range htmlID.FindAllSubmatch(data, -1) {
		out[string(m[1])] = true
	}
	return out
}

// TestDocLinks: every relative link in the README, docs/ and the examples'
// READMEs points at a file or directory of the repository (and, for
// markdown targets with a #fragment, at an anchor that exists). Users of a
// clone have nothing else, so a link outside the repository is an error too.
func TestDocLinks(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	checked := 0
	for _, file := range userDocs(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		// Links inside code blocks are code, not links.
		text := regexp.MustCompile("(?s)```.*?```").ReplaceAllStringFunc(string(data), func(s string) string {
			return strings.Repeat("\n", strings.Count(s, "\n"))
		})
		for _, m := range mdLink.FindAllStringSubmatchIndex(text, -1) {
			target := text[m[2]:m[3]]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			line := strings.Count(text[:m[0]], "\n") + 1
			where := fmt.Sprintf("%s:%d -> %s", strings.TrimPrefix(file, "../"), line, target)
			path, frag, _ := strings.Cut(target, "#")
			abs := file
			if path != "" {
				abs = filepath.Join(filepath.Dir(file), path)
			}
			absFull, err := filepath.Abs(abs)
			if err != nil || !strings.HasPrefix(absFull, root) {
				missing = append(missing, where+" (outside the repository)")
				continue
			}
			checked++
			st, err := os.Stat(abs)
			if err != nil {
				missing = append(missing, where+" (no such file)")
				continue
			}
			if frag != "" && !st.IsDir() && strings.HasSuffix(abs, ".md") {
				b, err := os.ReadFile(abs)
				if err != nil {
					t.Fatal(err)
				}
				if !anchors(b)[frag] {
					missing = append(missing, where+" (no such anchor)")
				}
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d broken links in the user docs:\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
	if checked < 20 {
		t.Errorf("only %d links checked; the scan is broken", checked)
	}
}
