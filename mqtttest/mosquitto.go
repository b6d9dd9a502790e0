package mqtttest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// mosquittoPath is where Debian's mosquitto package installs the broker.
const mosquittoPath = "/usr/sbin/mosquitto"

// Mosquitto starts Debian's mosquitto on a free loopback port with a
// generated configuration (listener on 127.0.0.1 only, anonymous clients
// allowed) and stops it when the test ends. It returns "127.0.0.1:port".
// Without the binary the test is skipped, unless the environment has
// CI=true, where it fails.
func Mosquitto(t testing.TB) string {
	t.Helper()
	bin := mosquittoPath
	if _, err := os.Stat(bin); err != nil {
		if p, err2 := exec.LookPath("mosquitto"); err2 == nil {
			bin = p
		} else {
			msg := "mosquitto not installed (" + mosquittoPath + "): apt-get install -y mosquitto"
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	cfg := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\n", port)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	logf, err := os.Create(filepath.Join(dir, "mosquitto.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting mosquitto: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			t.Error("mosquitto did not exit")
		}
		logf.Close()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "mosquitto.log"))
			t.Fatalf("mosquitto exited at start: %s", b)
		case <-ctx.Done():
			t.Fatalf("mosquitto did not listen on %s: %v", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
