package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// result is one test's outcome; lws-ss-bench prints the same fields.
type result struct {
	Client     string  `json:"client"`
	Test       string  `json:"test"`
	N          int     `json:"n"`
	GOMAXPROCS int     `json:"gomaxprocs,omitempty"`
	Seconds    float64 `json:"seconds"`
	Rate       float64 `json:"rate,omitempty"`          // h1, echo: per second
	CPU        float64 `json:"cpu_us_per_op,omitempty"` // h1, echo: user+system µs per op
	P50        float64 `json:"p50_us,omitempty"`        // echo
	P99        float64 `json:"p99_us,omitempty"`        // echo
	Heap       float64 `json:"heap_per_stream,omitempty"`
	RSS        float64 `json:"rss_per_stream,omitempty"`
}

func (r *result) rates(el, cpu time.Duration) {
	r.Seconds = el.Seconds()
	r.Rate = float64(r.N) / el.Seconds()
	r.CPU = float64(cpu.Microseconds()) / float64(r.N)
}

func (r *result) write(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

type row struct {
	name string
	get  func(map[string]*result) (float64, bool)
	f    int
}

func field(test string, f func(*result) float64) func(map[string]*result) (float64, bool) {
	return func(m map[string]*result) (float64, bool) {
		r := m[test]
		if r == nil {
			return 0, false
		}
		return f(r), true
	}
}

var rows = []row{
	{"h1 GET 1 KiB, transactions/s", field("h1", func(r *result) float64 { return r.Rate }), 0},
	{"h1 client CPU per transaction (µs)", field("h1", func(r *result) float64 { return r.CPU }), 1},
	{"raw 64 B echo, round trips/s", field("echo", func(r *result) float64 { return r.Rate }), 0},
	{"raw 64 B echo p50 (µs)", field("echo", func(r *result) float64 { return r.P50 }), 0},
	{"raw 64 B echo p99 (µs)", field("echo", func(r *result) float64 { return r.P99 }), 0},
	{"raw echo client CPU per round trip (µs)", field("echo", func(r *result) float64 { return r.CPU }), 1},
	{"idle stream, heap per stream (B)", field("idle", func(r *result) float64 { return r.Heap }), 0},
	{"idle stream, RSS per stream (B)", field("idle", func(r *result) float64 { return r.RSS }), 0},
	{"connected raw stream, heap per stream (B)", field("connected", func(r *result) float64 { return r.Heap }), 0},
	{"connected raw stream, RSS per stream (B)", field("connected", func(r *result) float64 { return r.RSS }), 0},
	{"raw streams, time to all CONNECTED (s)", field("connected", func(r *result) float64 { return r.Seconds }), 3},
}

// printTable prints label=file.jsonl runs side by side; every column after
// the first also gets its ratio to the first.
func printTable(w io.Writer, spec string) error {
	type col struct {
		label string
		m     map[string]*result
		n     map[string]int
	}
	var cols []col
	for _, item := range strings.Split(spec, ",") {
		label, file, ok := strings.Cut(item, "=")
		if !ok {
			return fmt.Errorf("-table: %q is not label=file", item)
		}
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		c := col{label: label, m: map[string]*result{}}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			r := &result{}
			if json.Unmarshal(sc.Bytes(), r) == nil && r.Test != "" {
				c.m[r.Test] = r
			}
		}
		f.Close()
		cols = append(cols, c)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	hdr := "measure"
	for i, c := range cols {
		hdr += "\t" + c.label
		if i > 0 {
			hdr += "\t" + c.label + " / " + cols[0].label
		}
	}
	fmt.Fprintln(tw, hdr+"\t")
	for _, rw := range rows {
		line := rw.name
		ref, refOK := rw.get(cols[0].m)
		for i, c := range cols {
			v, ok := rw.get(c.m)
			if !ok {
				line += "\t–"
			} else {
				line += "\t" + strconv.FormatFloat(v, 'f', rw.f, 64)
			}
			if i > 0 {
				if ok && refOK && ref != 0 {
					line += "\t" + strconv.FormatFloat(v/ref, 'f', 2, 64) + "×"
				} else {
					line += "\t–"
				}
			}
		}
		fmt.Fprintln(tw, line+"\t")
	}
	return tw.Flush()
}
