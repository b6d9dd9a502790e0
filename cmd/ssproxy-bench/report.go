package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Result is one run's measurements (the -json output).
type Result struct {
	Label      string      `json:"label"`
	Proxy      string      `json:"proxy,omitempty"`
	Direct     string      `json:"direct,omitempty"`
	Streamtype string      `json:"streamtype"`
	PID        int         `json:"pid,omitempty"`
	Frame      int         `json:"tx_frame_bytes"`
	Window     int         `json:"tx_window_bytes"`
	Time       string      `json:"time"`
	LoadAvg    string      `json:"loadavg,omitempty"`
	Latency    *Latency    `json:"latency,omitempty"`
	Rx         *Throughput `json:"rx,omitempty"`
	Tx         *Throughput `json:"tx,omitempty"`
	Streams    []Streams   `json:"streams,omitempty"`
	Cycles     *Cycles     `json:"cycles,omitempty"`
	RSSStart   int64       `json:"rss_start_bytes,omitempty"`
	RSSEnd     int64       `json:"rss_end_bytes,omitempty"`
	Errors     []string    `json:"errors,omitempty"`
}

type resultCell struct {
	name string
	v    float64
	text string
}

// cells lists the table rows this result has, in order.
func (r *Result) cells() []resultCell {
	var out []resultCell
	add := func(name string, v float64, text string) { out = append(out, resultCell{name, v, text}) }
	f1 := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	if l := r.Latency; l != nil {
		add(fmt.Sprintf("%d B round trip p50 (µs)", l.Size), l.P50us, f1(l.P50us))
		add(fmt.Sprintf("%d B round trip p99 (µs)", l.Size), l.P99us, f1(l.P99us))
	}
	if r.Rx != nil {
		add("rx MiB/s (16 KiB writes)", r.Rx.MiBps, f1(r.Rx.MiBps))
	}
	if r.Tx != nil {
		add(fmt.Sprintf("tx MiB/s (%d B frames, window %d)", r.Frame, r.Window), r.Tx.MiBps, f1(r.Tx.MiBps))
	}
	if r.RSSStart > 0 {
		add("RSS at start (MB)", float64(r.RSSStart)/1e6, f1(float64(r.RSSStart)/1e6))
	}
	for _, s := range r.Streams {
		add(fmt.Sprintf("%d streams, setup (s)", s.N), s.SetupSeconds, strconv.FormatFloat(s.SetupSeconds, 'f', 3, 64))
		add(fmt.Sprintf("%d streams, round trips/s", s.N), s.RoundTripsPS, strconv.FormatFloat(s.RoundTripsPS, 'f', 0, 64))
		if s.RSSConnected > 0 {
			add(fmt.Sprintf("%d streams, RSS per idle stream (KB)", s.N), s.RSSPerStream/1e3, f1(s.RSSPerStream/1e3))
			add(fmt.Sprintf("%d streams, RSS per busy stream (KB)", s.N), s.RSSPerBusy/1e3, f1(s.RSSPerBusy/1e3))
			add(fmt.Sprintf("%d streams, RSS peak (MB)", s.N), float64(s.RSSPeak)/1e6, f1(float64(s.RSSPeak)/1e6))
			add(fmt.Sprintf("%d streams, RSS after closing (MB)", s.N), float64(s.RSSClosed)/1e6, f1(float64(s.RSSClosed)/1e6))
		}
	}
	if c := r.Cycles; c != nil && len(c.After) > 0 {
		add(fmt.Sprintf("RSS after 1 cycle of %d streams (MB)", c.N), float64(c.After[0])/1e6, f1(float64(c.After[0])/1e6))
		add(fmt.Sprintf("RSS after %d cycles of %d streams (MB)", c.K, c.N), float64(c.After[c.K-1])/1e6, f1(float64(c.After[c.K-1])/1e6))
		add(fmt.Sprintf("RSS growth, cycle %d vs 1 (%%)", c.K), c.Growth*100, f1(c.Growth*100))
	}
	return out
}

// printTable prints results side by side (a markdown table); with two or
// more, the last column is the last result's value over the one before.
func printTable(w io.Writer, rs []*Result) {
	rounds := make([][]*Result, len(rs))
	for i, r := range rs {
		rounds[i] = []*Result{r}
	}
	printRounds(w, rounds)
}

// printRounds prints labelled columns side by side, each column the runs
// of one label (rounds[i][k]: label i's run in round k, all labelled the
// same). A cell is the median of its runs; the last column is the median
// of the per-round ratios of the last label over the one before (rounds
// paired by index), so that runs made in the same round are compared with
// each other, as interleaved benchmark pairs are.
func printRounds(w io.Writer, rounds [][]*Result) {
	var order []string
	vals := map[string][][]float64{} // measure → label → one value per round (NaN: absent)
	texts := map[string][]string{}   // a single run's own formatting
	for i, runs := range rounds {
		for k, r := range runs {
			for _, c := range r.cells() {
				if vals[c.name] == nil {
					order = append(order, c.name)
					vals[c.name] = make([][]float64, len(rounds))
					texts[c.name] = make([]string, len(rounds))
				}
				v := vals[c.name]
				for len(v[i]) <= k {
					v[i] = append(v[i], math.NaN())
				}
				v[i][k] = c.v
				texts[c.name][i] = c.text
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	hdr := []string{"measure"}
	for _, runs := range rounds {
		hdr = append(hdr, runs[0].Label)
	}
	n := len(rounds)
	if n >= 2 {
		hdr = append(hdr, rounds[n-1][0].Label+" / "+rounds[n-2][0].Label)
	}
	fmt.Fprintln(tw, strings.Join(hdr, "\t")+"\t")
	for _, name := range order {
		row := []string{name}
		for i, v := range vals[name] {
			m, ok := median(v)
			switch {
			case !ok:
				row = append(row, "–")
			case len(rounds[i]) == 1:
				row = append(row, texts[name][i])
			default:
				// As many decimals as the measure's own formatting.
				t, dec := texts[name][i], 0
				if dot := strings.IndexByte(t, '.'); dot >= 0 {
					dec = len(t) - dot - 1
				}
				row = append(row, strconv.FormatFloat(m, 'f', dec, 64))
			}
		}
		if n >= 2 {
			a, b := vals[name][n-1], vals[name][n-2]
			var ratios []float64
			for k := 0; k < len(a) && k < len(b); k++ {
				if !math.IsNaN(a[k]) && !math.IsNaN(b[k]) && b[k] != 0 {
					ratios = append(ratios, a[k]/b[k])
				}
			}
			if m, ok := median(ratios); ok {
				row = append(row, strconv.FormatFloat(m, 'f', 2, 64)+"×")
			} else {
				row = append(row, "–")
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	for _, runs := range rounds {
		for _, r := range runs {
			for _, e := range r.Errors {
				fmt.Fprintf(w, "%s: FAILED %s\n", r.Label, e)
			}
			if r.LoadAvg != "" {
				fmt.Fprintf(w, "%s: load average at start %s\n", r.Label, r.LoadAvg)
			}
		}
	}
}

// median returns the median of the values that are not NaN, and whether
// there was one.
func median(v []float64) (float64, bool) {
	var xs []float64
	for _, x := range v {
		if !math.IsNaN(x) {
			xs = append(xs, x)
		}
	}
	if len(xs) == 0 {
		return 0, false
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2], true
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2, true
}

// compare reads -json outputs named label=file and prints them side by
// side. A label may name several runs, label=a.json+b.json+...: one per
// round of an alternated run; the table then shows medians (printRounds).
func compare(w io.Writer, spec string) error {
	var rounds [][]*Result
	for _, item := range strings.Split(spec, ",") {
		label, files, ok := strings.Cut(item, "=")
		if !ok || label == "" || files == "" {
			return usageError{fmt.Errorf("-compare: %q is not label=file", item)}
		}
		var runs []*Result
		for _, file := range strings.Split(files, "+") {
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			r := &Result{}
			if err := json.Unmarshal(data, r); err != nil {
				return fmt.Errorf("-compare: %s: %v", file, err)
			}
			r.Label = label
			runs = append(runs, r)
		}
		rounds = append(rounds, runs)
	}
	printRounds(w, rounds)
	return nil
}

// printPolicy writes a policy (the JSON format ssproxy and libwebsockets'
// proxy both read) with one raw streamtype reaching the peer at addr.
func printPolicy(w io.Writer, addr, streamtype string, buflen int) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError{fmt.Errorf("-print-policy %q: %v", addr, err)}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return usageError{fmt.Errorf("-print-policy %q: bad port", addr)}
	}
	if streamtype == "" || len(streamtype) > 31 {
		return usageError{fmt.Errorf("-streamtype %q: 1..31 bytes", streamtype)}
	}
	if buflen < 1 {
		return usageError{fmt.Errorf("-proxy-buflen %d: must be ≥ 1", buflen)}
	}
	type st struct {
		Endpoint    string `json:"endpoint"`
		Port        int    `json:"port"`
		Protocol    string `json:"protocol"`
		Retry       string `json:"retry"`
		ProxyBuflen int    `json:"proxy_buflen"`
		RxflowOn    int    `json:"proxy_buflen_rxflow_on_above"`
		RxflowOff   int    `json:"proxy_buflen_rxflow_off_below"`
	}
	pol := map[string]any{
		"release":        "01234567",
		"product":        "ssproxy-bench",
		"schema-version": 1,
		"retry": []map[string]any{{"default": map[string]any{
			"backoff": []int{100, 200, 500, 1000}, "conceal": 5, "jitterpc": 20, "svalidping": 300, "svalidhup": 310,
		}}},
		"s": []map[string]st{{streamtype: {Endpoint: host, Port: p, Protocol: "raw", Retry: "default", ProxyBuflen: buflen,
			// Without rx flow control an lws proxy drops a link whose
			// buffer fills faster than the client reads.
			RxflowOn: buflen / 2, RxflowOff: buflen / 4}}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(pol)
}
