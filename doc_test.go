package ss_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/securestreams/ss"
)

// TestEventDocListsFields: go doc ss.Event shows the alias's comment, which
// lists Event's fields; every field of the struct must be in that list.
func TestEventDocListsFields(t *testing.T) {
	src, err := os.ReadFile("events.go")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	i := strings.Index(text, "type Event = event.Event")
	if i < 0 {
		t.Fatal("events.go has no Event alias")
	}
	comment := text[strings.LastIndex(text[:i], "\n\n"):i]
	ev := reflect.TypeFor[ss.Event]()
	for f := range ev.Fields() {
		if !strings.Contains(comment, "//\t\t"+f.Name+" ") {
			t.Errorf("the doc comment of ss.Event does not list field %s", f.Name)
		}
	}
}
