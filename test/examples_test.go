package test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exampleRuns says, for every program under examples/, what a successful run
// prints on stdout. examples/quickstart has its own tests next to it.
var exampleRuns = map[string][]string{
	"http-get":       {"hello from /greetings/hello", "content-type: text/plain"},
	"http-post":      {"received 5 bytes \"hello\", Content-Length 5", "received 11 bytes \"hello world\", Content-Length 11, chunked false", "received 13 bytes \"one two three\", Content-Length -1, chunked true"},
	"ws-client":      {"message: echo /chat/lobby: hello", "message: echo /chat/lobby: two fragments"},
	"mqtt-pubsub":    {"reading 2 acknowledged", "display: 21.5\ndisplay: 21.7", "broker connections: 1"},
	"http-ws-server": {`http: 200 text/plain "hello gopher at /greet"`, "ws: echo ping"},
	"raw-server":     {`got "HELLO\n"`, `got "SECURE STREAMS\n"`},
	"proxied-client": {"rx: hello through the proxy", "QOS_ACK_REMOTE", "DESTROYING"},
	"static-policy":  {`policy "example-static-policy" compiled in`, "echo: static"},
	"metadata":       {"undeclared: ", "path /items/42, query lang=en, X-Request-Id req-1", `etag: "v7"`},
	"hugeurl":        {"URL of 65546 bytes, q of 65536 bytes"},
	"perf":           {`perf report: {"peer":"127.0.0.1"`, "body: 100000 bytes, perf reports: 1"},
	"stress":         {"500/500 streams ok", "no live streams left"},
	"captive-portal": {"network: InternetOK", "app: hello from the internet"},
	"supervision": {"-- the worker fails: its supervisor restarts the session, the stream reconnects\n",
		`session:   CREATING CONNECTING CONNECTED DISCONNECTED CONNECTING CONNECTED rx "after restart" DISCONNECTED DESTROYING closed` + "\n",
		"bystander: CREATING CONNECTING CONNECTED\n"},
	"lwa":     {"state: AUTH_FAILED", "api: hello, your token is Atza|tok-1", "refreshed before expiry: Atza|tok-2", "api: hello, your token is Atza|tok-2"},
	"aws-iot": {"mtls-8883: round trip", "mtls-443-alpn: round trip", "wss-sigv4: round trip", "custom-authorizer: round trip"},
}

// TestExamples builds every example once and runs each (they start their
// own loopback servers and exit 0 on success), checking its output.
func TestExamples(t *testing.T) {
	t.Parallel()
	dirs, err := filepath.Glob("../examples/*/main.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		name := filepath.Base(filepath.Dir(d))
		if _, ok := exampleRuns[name]; !ok && name != "quickstart" {
			t.Errorf("examples/%s has no entry in exampleRuns: every example must run in a test", name)
		}
		if !bytes.Contains(readme, []byte("](examples/"+name+")")) {
			t.Errorf("examples/%s has no line in the README's examples table", name)
		}
	}
	out := filepath.Join(binDir, "examples")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", out+string(filepath.Separator), "./examples/...", "./cmd/sspolicy")
	build.Dir = ".."
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/...: %v\n%s", err, b)
	}
	t.Run("static-policy is generated", func(t *testing.T) {
		gen := exec.Command(filepath.Join(out, "sspolicy"), "gen", "-strict", "-pkg", "main", "-var", "staticPolicy", "policy.json")
		gen.Dir = "../examples/static-policy"
		want, err := gen.Output()
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile("../examples/static-policy/policy_gen.go")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Error("examples/static-policy/policy_gen.go is out of date: go generate ./examples/static-policy")
		}
	})
	for name, wants := range exampleRuns {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(out, name))
			cmd.Dir = filepath.Join("..", "examples", name)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", name, err, stdout.String(), stderr.String())
			}
			for _, w := range wants {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("%s: stdout lacks %q:\n%s", name, w, stdout.String())
				}
			}
		})
	}
}
