package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Result is one run's measurements (the -json output).
type Result struct {
	Label      string       `json:"label"`
	Proxy      string       `json:"proxy,omitempty"`
	Direct     string       `json:"direct,omitempty"`
	Streamtype string       `json:"streamtype"`
	PID        int          `json:"pid,omitempty"`
	Frame      int          `json:"tx_frame_bytes"`
	Window     int          `json:"tx_window_bytes"`
	Time       string       `json:"time"`
	LoadAvg    string       `json:"loadavg,omitempty"`
	Latency    *Latency     `json:"latency,omitempty"`
	Rx         *Throughput  `json:"rx,omitempty"`
	Tx         *Throughput  `json:"tx,omitempty"`
	Streams    []Streams    `json:"streams,omitempty"`
	Cycles     *Cycles      `json:"cycles,omitempty"`
	RSSStart   int64        `json:"rss_start_bytes,omitempty"`
	RSSEnd     int64        `json:"rss_end_bytes,omitempty"`
	Errors     []string     `json:"errors,omitempty"`
	rows       []resultCell // filled by cells
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
	var order []string
	vals := map[string][]*resultCell{}
	for i, r := range rs {
		for _, c := range r.cells() {
			if vals[c.name] == nil {
				order = append(order, c.name)
				vals[c.name] = make([]*resultCell, len(rs))
			}
			vals[c.name][i] = &c
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	hdr := []string{"measure"}
	for _, r := range rs {
		hdr = append(hdr, r.Label)
	}
	n := len(rs)
	if n >= 2 {
		hdr = append(hdr, rs[n-1].Label+" / "+rs[n-2].Label)
	}
	fmt.Fprintln(tw, strings.Join(hdr, "\t")+"\t")
	for _, name := range order {
		row := []string{name}
		for _, c := range vals[name] {
			if c == nil {
				row = append(row, "–")
			} else {
				row = append(row, c.text)
			}
		}
		if n >= 2 {
			a, b := vals[name][n-1], vals[name][n-2]
			if a != nil && b != nil && b.v != 0 {
				row = append(row, strconv.FormatFloat(a.v/b.v, 'f', 2, 64)+"×")
			} else {
				row = append(row, "–")
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	for _, r := range rs {
		for _, e := range r.Errors {
			fmt.Fprintf(w, "%s: FAILED %s\n", r.Label, e)
		}
		if r.LoadAvg != "" {
			fmt.Fprintf(w, "%s: load average at start %s\n", r.Label, r.LoadAvg)
		}
	}
}

// compare reads -json outputs named label=file and prints them side by side.
func compare(w io.Writer, spec string) error {
	var rs []*Result
	for _, item := range strings.Split(spec, ",") {
		label, file, ok := strings.Cut(item, "=")
		if !ok || label == "" || file == "" {
			return usageError{fmt.Errorf("-compare: %q is not label=file", item)}
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		r := &Result{}
		if err := json.Unmarshal(data, r); err != nil {
			return fmt.Errorf("-compare: %s: %v", file, err)
		}
		r.Label = label
		rs = append(rs, r)
	}
	printTable(w, rs)
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
