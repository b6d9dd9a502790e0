package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.GoleakOptions()...)
}

func pass(t *testing.T, s string) map[string]map[string]float64 {
	t.Helper()
	m, err := parse(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The ratio is taken inside each pass and the median across passes: a pass
// where both sides were slowed by load gives the same ratio as a quiet one.
func TestRatiosPerPassAndMedian(t *testing.T) {
	rs := results{
		pass(t, "goos: linux\nBenchmarkRaw64BEcho/ss-2   \t 1000\t 30000 ns/op\t 64 B/op\nBenchmarkRaw64BEcho/raw-2 \t 1000\t 20000 ns/op\n"),
		pass(t, "BenchmarkRaw64BEcho/ss-2 1000 90000 ns/op\nBenchmarkRaw64BEcho/raw-2 1000 60000 ns/op\n"),
		pass(t, "BenchmarkRaw64BEcho/ss-2 1000 22000 ns/op\nBenchmarkRaw64BEcho/raw-2 1000 20000 ns/op\n"+
			"BenchmarkH1Get1KiB/ss-2 100 200000 ns/op\nBenchmarkH1Get1KiB/raw-2 100 100000 ns/op\n"+
			"BenchmarkMQTTQoS1Windowed/ss-2 1 1 ns/op 30000 msg/s\nBenchmarkMQTTQoS1Windowed/raw-2 1 1 ns/op 20000 msg/s\n"+
			"BenchmarkProxyStreamCycles/ssproxy-2 1 5 ns/op 4000 RSS-B/stream-c1 1.2 RSS-after-c8/c1\n"+
			"BenchmarkPairRaw64BEcho-2 100 90000 ns/op 0.9 chan/raw 1.1 ss/raw 1.2 ss/chan\n"+
			"BenchmarkPairH2Get1KiB-2 100 90000 ns/op 1.25 ss/raw 1.1 transport/raw\n"+
			"BenchmarkPairH3Get1KiB-2 100 90000 ns/op 1.05 ss/raw\n"),
	}
	var out bytes.Buffer
	measured, missed := table(&out, rs)
	if measured != 8 || missed != 5 {
		t.Errorf("measured %d, missed %d; want 8 and 5 (ss/raw 1.5 > 1.2, h1 0.5 < 0.9, MQTT 1.5 ≥ 1 passes, cycles 1.2 > 1.1, interleaved ss/raw 1.1 passes, ss/chan 1.2 > 1.05, interleaved h2 rate 1/1.25 = 0.8 < 0.9, h3 1/1.05 = 0.95 passes)\n%s", measured, missed, out.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "h2 GET 1 KiB, ss/x/net/http2 rate (interleaved)") && !strings.Contains(line, "0.80") {
			t.Errorf("interleaved h2 row %q: want the inverse of the time ratio, 0.80", line)
		}
	}
	for _, want := range []string{
		"h1 GET 1 KiB, ss/net/http rate",
		"MQTT QoS 1 (windowed), ss/paho rate",
		"ssproxy RSS after 8 cycles / after the first",
		"not run",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	for _, line := range strings.Split(out.String(), "\n") {
		cells := strings.Fields(strings.ReplaceAll(line, "|", " | "))
		switch {
		case strings.HasPrefix(line, "raw 64 B round trip, ss/raw") && !strings.Contains(line, "interleaved"):
			// Ratios 1.5, 1.5, 1.1: median 1.50 over 3 passes, range 1.10–1.50.
			if !strings.Contains(strings.Join(cells, " "), "| 1.50 | 3 | 1.10–1.50 | ≤ 1.20 | MISS") {
				t.Errorf("ss/raw row %q", line)
			}
		case strings.HasPrefix(line, "h1 GET") && !strings.Contains(line, "interleaved"):
			if !strings.Contains(line, "0.50") || !strings.Contains(line, "MISS") {
				t.Errorf("h1 row %q: want rate ratio 0.50 (100 µs raw / 200 µs ss) and MISS", line)
			}
		case strings.HasPrefix(line, "MQTT QoS 1"):
			if !strings.Contains(line, "1.50") || !strings.Contains(line, "PASS") {
				t.Errorf("MQTT row %q: want 1.50 PASS", line)
			}
		}
	}
}

func TestParseRejectsBadValue(t *testing.T) {
	if _, err := parse(strings.NewReader("BenchmarkX/ss-2 10 abc ns/op\n")); err == nil || !strings.Contains(err.Error(), `"abc"`) {
		t.Fatalf("err %v, want one naming the bad value", err)
	}
}
