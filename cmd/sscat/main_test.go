package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/mqtttest"
	"github.com/securestreams/ss/policy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.GoleakOptions()...)
}

// sscat runs the command in-process with stdin and returns its exit status,
// stdout and stderr.
func sscat(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// httpPolicy serves /echo (the request body and query back) and /missing
// (404) on loopback and returns a policy file for them.
func httpPolicy(t *testing.T) string {
	t.Helper()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s body=%q", r.Method, r.URL.Path, r.Header.Get("X-Tag"), body)
	}))
	t.Cleanup(web.Close)
	port := web.Listener.Addr().(*net.TCPAddr).Port
	return writeFile(t, "policy.json", fmt.Sprintf(`{"s": [{
		"get": {"endpoint": "127.0.0.1", "port": %[1]d, "http_method": "GET", "http_url": "items/${id}",
		        "metadata": [{"id": ""}, {"tag": "x-tag:"}]},
		"post": {"endpoint": "127.0.0.1", "port": %[1]d, "http_method": "POST", "http_url": "echo"},
		"missing": {"endpoint": "127.0.0.1", "port": %[1]d, "http_method": "GET", "http_url": "missing"},
		"refused": {"protocol": "raw", "endpoint": "+@sscat-test-nobody-listens"}
	}]}`, port))
}

func TestHTTPGet(t *testing.T) {
	pol := httpPolicy(t)
	code, out, errOut := sscat(t, "", "-policy", pol, "get", "-m", "id=42", "-m", "tag=t1", "-v")
	if code != 0 || out != `GET /items/42 t1 body=""` {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, st := range []string{"sscat: CREATING\n", "sscat: CONNECTED\n", "sscat: QOS_ACK_REMOTE\n", "sscat: DESTROYING\n"} {
		if !strings.Contains(errOut, st) {
			t.Errorf("-v: stderr lacks %q:\n%s", st, errOut)
		}
	}
	// Without -v the states stay off stderr.
	if code, _, errOut := sscat(t, "", "-policy", pol, "get", "-m", "id=1"); code != 0 || errOut != "" {
		t.Errorf("quiet: exit %d, stderr %q", code, errOut)
	}
}

func TestHTTPPost(t *testing.T) {
	pol := httpPolicy(t)
	body := writeFile(t, "body.txt", "from a file")
	for _, c := range []struct{ stdin, d, want string }{
		{"", "@" + body, `POST /echo  body="from a file"`},
		{"from stdin", "-", `POST /echo  body="from stdin"`},
		{"", "literal", `POST /echo  body="literal"`},
	} {
		code, out, errOut := sscat(t, c.stdin, "-policy", pol, "-d", c.d, "post")
		if code != 0 || out != c.want {
			t.Errorf("-d %s: exit %d, stdout %q, stderr %q", c.d, code, out, errOut)
		}
	}
}

func TestFailures(t *testing.T) {
	pol := httpPolicy(t)
	code, out, errOut := sscat(t, "", "-policy", pol, "missing")
	if code != 1 || !strings.Contains(out, "404") || !strings.Contains(errOut, "QOS_NACK_REMOTE") {
		t.Errorf("404: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, _, errOut = sscat(t, "", "-policy", pol, "refused")
	if code != 1 || !strings.Contains(errOut, "ALL_RETRIES_FAILED") {
		t.Errorf("refused: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = sscat(t, "", "-policy", pol, "nope")
	if code != 1 || !strings.Contains(errOut, "unknown streamtype") {
		t.Errorf("unknown streamtype: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = sscat(t, "", "-policy", filepath.Join(t.TempDir(), "none.json"), "get")
	if code != 1 || !strings.Contains(errOut, "none.json") {
		t.Errorf("missing policy: exit %d, stderr %q", code, errOut)
	}
}

func TestUsage(t *testing.T) {
	for _, h := range []string{"-h", "-help", "--help"} {
		code, out, errOut := sscat(t, "", h)
		if code != 0 || errOut != "" || !strings.Contains(out, "Usage:") {
			t.Errorf("%s: exit %d, stderr %q", h, code, errOut)
		}
		for _, f := range []string{"-policy", "-proxy", "-m", "-d", "-v", "-count", "-timeout"} {
			if !strings.Contains(out, "  "+f+" ") && !strings.Contains(out, "  "+f+"\n") && !strings.Contains(out, "  "+f+"\t") {
				t.Errorf("%s: flag %s not described", h, f)
			}
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no STREAMTYPE given"},
		{[]string{"get"}, "-policy FILE or -proxy ADDRESS is required"},
		{[]string{"-policy", "p", "a", "b"}, `one STREAMTYPE expected, got ["a" "b"]`},
		{[]string{"-policy", "p", "-m", "novalue", "a"}, `want name=value, got "novalue"`},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
	} {
		code, out, errOut := sscat(t, "", c.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", c.args, code, out, errOut, c.want)
		}
	}
}

// TestRawAndProxy: a raw echo through sscat, direct and through an
// in-process SS proxy on a unix socket (no local policy).
func TestRawAndProxy(t *testing.T) {
	echo := testutil.Listen(t, "tcp", "127.0.0.1:0", nil, testutil.Echo)
	doc := fmt.Sprintf(`{"s": [{"echo": {"protocol": "raw", "endpoint": "127.0.0.1", "port": %d}}]}`, echo.Port())
	pol := writeFile(t, "raw.json", doc)
	code, out, errOut := sscat(t, "", "-policy", pol, "-d", "ping", "-count", "1", "echo")
	if code != 0 || out != "ping" {
		t.Errorf("direct: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	p, _, err := policy.Parse([]byte(doc), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	proxyRT, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	defer proxyRT.Close(ctx)
	sock := filepath.Join(t.TempDir(), "proxy.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- proxyRT.ServeProxy(pctx, ln) }()
	defer func() { stop(); <-served }()

	code, out, errOut = sscat(t, "", "-proxy", "unix:"+sock, "-d", "via proxy", "-count", "1", "echo")
	if code != 0 || out != "via proxy" {
		t.Errorf("proxied: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestWebSocket: a ws streamtype against an ss WebSocket echo server; sscat
// sends one message and exits after -count 1 received message.
func TestWebSocket(t *testing.T) {
	ctx := context.Background()
	srvPolicy, _, err := policy.Parse([]byte(`{"s": [{"echo": {"server": true, "protocol": "h1", "endpoint": "127.0.0.1", "port": 0, "ws_subprotocol": "e"}}]}`), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := ss.New(ctx, ss.Config{Policy: srvPolicy})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	srv, err := rt.Serve(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for acc := range srv.Accepted() {
			go func() {
				for ev := range acc.Events() {
					if ev.Kind == ss.PayloadEvent {
						acc.Write(ctx, ev.Payload, ev.Flags&(ss.SOM|ss.EOM))
					}
				}
			}()
		}
	}()
	pol := writeFile(t, "ws.json", fmt.Sprintf(`{"s": [{"chat": {"protocol": "ws", "endpoint": "127.0.0.1", "port": %d, "ws_subprotocol": "e"}}]}`,
		srv.Addr().(*net.TCPAddr).Port))
	code, out, errOut := sscat(t, "", "-policy", pol, "-d", "hi there", "-count", "1", "-v", "chat")
	if code != 0 || out != "hi there" || !strings.Contains(errOut, "sscat: CONNECTED\n") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestMQTTPublish: an mqtt streamtype that only publishes ends when its
// message is acknowledged; the broker received it.
func TestMQTTPublish(t *testing.T) {
	ctx := context.Background()
	broker, err := mqtttest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close(ctx)
	got, err := broker.Collect("sscat/#")
	if err != nil {
		t.Fatal(err)
	}
	pol := writeFile(t, "mqtt.json", fmt.Sprintf(`{"s": [{"pub": {"protocol": "mqtt", "endpoint": "127.0.0.1", "port": %d,
		"mqtt_topic": "sscat/${room}", "mqtt_qos": 1, "metadata": [{"room": ""}]}}]}`, broker.Port()))
	code, out, errOut := sscat(t, "", "-policy", pol, "-m", "room=hall", "-d", "21.5", "-v", "pub")
	if code != 0 || out != "" || !strings.Contains(errOut, "sscat: QOS_ACK_REMOTE (message 1)\n") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msgs, err := got.Wait(wctx, 1)
	if err != nil || len(msgs) != 1 || msgs[0].Topic != "sscat/hall" || string(msgs[0].Payload) != "21.5" {
		t.Errorf("broker got %+v (%v)", msgs, err)
	}
}
