package test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSupervisionExample builds and runs examples/supervision, as a user
// would with go run, and checks what it prints: the supervisor's restart
// reconnected the session stream, its stop destroyed it, and the other
// stream was not disturbed.
func TestSupervisionExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(binDir, "supervision")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/securestreams/ss/examples/supervision").CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/supervision: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin).CombinedOutput()
	if err != nil {
		t.Fatalf("examples/supervision: %v\n%s", err, out)
	}
	for _, want := range []string{
		"-- the worker fails: its supervisor restarts the session, the stream reconnects\n",
		`session:   CREATING CONNECTING CONNECTED DISCONNECTED CONNECTING CONNECTED rx "after restart" DISCONNECTED DESTROYING closed` + "\n",
		"bystander: CREATING CONNECTING CONNECTED\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
}
