package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.GoleakOptions()...)
}

// TestRun: the supervisor's restart reconnects the session stream (and it
// carries data afterwards), its stop destroys it, and the bystander stream
// under another parent is not disturbed.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, &out); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`session:   CREATING CONNECTING CONNECTED DISCONNECTED CONNECTING CONNECTED rx "after restart" DISCONNECTED DESTROYING closed`,
		`bystander: CREATING CONNECTING CONNECTED`,
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w+"\n") {
			t.Fatalf("output lacks %q:\n%s", w, out.String())
		}
	}
}
