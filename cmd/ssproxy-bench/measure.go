package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// echoOpen dials a link and puts its peer connection in echo mode.
func echoOpen(t target) (link, error) {
	l, err := t.dial()
	if err != nil {
		return nil, err
	}
	if err := l.Write([]byte{modeEcho}); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// roundTrip writes msg and reads until as many bytes came back.
func roundTrip(l link, msg []byte) error {
	if err := l.Write(msg); err != nil {
		return err
	}
	for got := 0; got < len(msg); {
		b, err := l.Read()
		if err != nil {
			return err
		}
		got += len(b)
	}
	return nil
}

// Latency is the one-stream round trip result.
type Latency struct {
	Size   int     `json:"size_bytes"`
	Count  int     `json:"count"`
	P50us  float64 `json:"p50_us"`
	P99us  float64 `json:"p99_us"`
	MeanUS float64 `json:"mean_us"`
}

func measureLatency(t target, size, count int) (Latency, error) {
	l, err := echoOpen(t)
	if err != nil {
		return Latency{}, err
	}
	defer l.Close()
	msg := make([]byte, size)
	for range min(count/10+1, 200) { // warm-up
		if err := roundTrip(l, msg); err != nil {
			return Latency{}, err
		}
	}
	d := make([]time.Duration, count)
	var sum time.Duration
	for i := range d {
		t0 := time.Now()
		if err := roundTrip(l, msg); err != nil {
			return Latency{}, err
		}
		d[i] = time.Since(t0)
		sum += d[i]
	}
	slices.Sort(d)
	us := func(x time.Duration) float64 { return float64(x.Nanoseconds()) / 1e3 }
	return Latency{Size: size, Count: count, P50us: us(d[count/2]), P99us: us(d[count*99/100]), MeanUS: us(sum) / float64(count)}, nil
}

// Throughput is a one-way transfer result.
type Throughput struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	MiBps   float64 `json:"mib_per_s"`
}

func throughput(n int64, d time.Duration) Throughput {
	return Throughput{Bytes: n, Seconds: d.Seconds(), MiBps: float64(n) / (1 << 20) / d.Seconds()}
}

// measureRx has the peer send total bytes and times their arrival.
func measureRx(t target, total int64) (Throughput, error) {
	l, err := t.dial()
	if err != nil {
		return Throughput{}, err
	}
	defer l.Close()
	h := make([]byte, sourceHeaderLen)
	h[0] = modeSource
	binary.BigEndian.PutUint64(h[1:], uint64(total))
	t0 := time.Now()
	if err := l.Write(h); err != nil {
		return Throughput{}, err
	}
	for got := int64(0); got < total; {
		b, err := l.Read()
		if err != nil {
			return Throughput{}, fmt.Errorf("rx after %d of %d bytes: %w", got, total, err)
		}
		got += int64(len(b))
	}
	return throughput(total, time.Since(t0)), nil
}

// measureTx sends total bytes in frames of frame bytes, keeping at most
// window bytes not yet acknowledged by the peer (0: no pacing), and times
// until the peer has acknowledged all of them.
func measureTx(t target, total int64, frame, window int) (Throughput, error) {
	l, err := t.dial()
	if err != nil {
		return Throughput{}, err
	}
	defer l.Close()
	every := int64(frame)
	if window > 0 {
		every = int64(max(window/4, 1))
	}
	h := make([]byte, sinkHeaderLen)
	h[0] = modeSink
	binary.BigEndian.PutUint64(h[1:], uint64(total))
	binary.BigEndian.PutUint32(h[9:], uint32(every))
	if err := l.Write(h); err != nil {
		return Throughput{}, err
	}
	var acked atomic.Int64
	progress := make(chan struct{}, 1)
	rerr := make(chan error, 1)
	go func() {
		// Acks are 8-byte cumulative counts; they may arrive split.
		var pend []byte
		for acked.Load() < total {
			b, err := l.Read()
			if err != nil {
				rerr <- err
				return
			}
			pend = append(pend, b...)
			for len(pend) >= 8 {
				acked.Store(int64(binary.BigEndian.Uint64(pend)))
				pend = pend[8:]
			}
			select {
			case progress <- struct{}{}:
			default:
			}
		}
		rerr <- nil
	}()
	msg := make([]byte, frame)
	t0 := time.Now()
	for sent := int64(0); sent < total; {
		for window > 0 && sent-acked.Load()+int64(frame) > int64(window) && sent > acked.Load() {
			select {
			case <-progress:
			case err := <-rerr:
				return Throughput{}, fmt.Errorf("tx: peer acks stopped at %d of %d bytes: %v", acked.Load(), total, err)
			}
		}
		n := min(int64(frame), total-sent)
		if err := l.Write(msg[:n]); err != nil {
			return Throughput{}, fmt.Errorf("tx after %d bytes: %w", sent, err)
		}
		sent += n
	}
	if err := <-rerr; err != nil {
		return Throughput{}, fmt.Errorf("tx: acked %d of %d bytes: %w", acked.Load(), total, err)
	}
	return throughput(total, time.Since(t0)), nil
}

// Streams is the result of N concurrent streams doing round trips.
type Streams struct {
	N            int     `json:"streams"`
	SetupSeconds float64 `json:"setup_s"`
	RoundTrips   int64   `json:"round_trips"`
	RoundTripsPS float64 `json:"round_trips_per_s"`
	RSSStart     int64   `json:"rss_start_bytes,omitempty"`
	RSSConnected int64   `json:"rss_connected_bytes,omitempty"`
	RSSPeak      int64   `json:"rss_peak_bytes,omitempty"`
	RSSClosed    int64   `json:"rss_closed_bytes,omitempty"`
	// RSSPerStream is (RSSConnected − RSSStart) / N: idle streams.
	RSSPerStream float64 `json:"rss_per_stream_bytes,omitempty"`
	// RSSPerBusy is (RSSPeak − RSSStart) / N: streams doing round trips.
	RSSPerBusy float64 `json:"rss_per_busy_stream_bytes,omitempty"`
}

// openMany opens n echo links, par at a time, and returns them with the
// time until all are connected; on error it closes those it opened.
func openMany(t target, n, par int) ([]link, time.Duration, error) {
	links := make([]link, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	t0 := time.Now()
	for range min(par, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				l, err := echoOpen(t)
				if err != nil {
					once.Do(func() { first = fmt.Errorf("stream %d of %d: %w", i+1, n, err) })
					next.Store(int64(n))
					return
				}
				links[i] = l
			}
		}()
	}
	wg.Wait()
	took := time.Since(t0)
	if first != nil {
		closeAll(links)
		return nil, 0, first
	}
	return links, took, nil
}

func closeAll(links []link) {
	for _, l := range links {
		if l != nil {
			l.Close()
		}
	}
}

// measureStreams opens n streams, runs 64 B round trips on all of them for
// d, and closes them; rss (may be nil) samples the proxy's memory.
func measureStreams(t target, n, par int, d, settle time.Duration, rss *rssWatch) (Streams, error) {
	r := Streams{N: n}
	if rss != nil {
		r.RSSStart = rss.now()
		rss.resetPeak()
	}
	links, took, err := openMany(t, n, par)
	if err != nil {
		return r, err
	}
	r.SetupSeconds = took.Seconds()
	if rss != nil {
		time.Sleep(settle / 4)
		r.RSSConnected = rss.now()
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	stop := time.Now().Add(d)
	t0 := time.Now()
	for _, l := range links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := make([]byte, 64)
			k := int64(0)
			for time.Now().Before(stop) {
				if err := roundTrip(l, msg); err != nil {
					once.Do(func() { first = err })
					break
				}
				k++
			}
			total.Add(k)
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	if rss != nil {
		r.RSSPeak = max(rss.peak(), r.RSSConnected)
	}
	closeAll(links)
	if first != nil {
		return r, fmt.Errorf("%d streams: round trip: %w", n, first)
	}
	r.RoundTrips = total.Load()
	r.RoundTripsPS = float64(r.RoundTrips) / el.Seconds()
	if rss != nil {
		time.Sleep(settle)
		r.RSSClosed = rss.now()
		r.RSSPerStream = float64(r.RSSConnected-r.RSSStart) / float64(n)
		r.RSSPerBusy = float64(r.RSSPeak-r.RSSStart) / float64(n)
	}
	return r, nil
}

// Cycles is the proxy's memory across create/destroy cycles.
type Cycles struct {
	N      int     `json:"streams"`
	K      int     `json:"cycles"`
	Start  int64   `json:"rss_start_bytes"`
	After  []int64 `json:"rss_after_cycle_bytes"`
	Growth float64 `json:"growth_last_vs_first"` // After[K-1]/After[0] − 1
}

func measureCycles(t target, n, k, par int, settle time.Duration, rss *rssWatch) (Cycles, error) {
	if rss == nil {
		return Cycles{}, errors.New("cycles need -pid")
	}
	c := Cycles{N: n, K: k, Start: rss.now()}
	msg := make([]byte, 64)
	for i := range k {
		links, _, err := openMany(t, n, par)
		if err != nil {
			return c, fmt.Errorf("cycle %d: %w", i+1, err)
		}
		for _, l := range links {
			if err := roundTrip(l, msg); err != nil {
				closeAll(links)
				return c, fmt.Errorf("cycle %d: %w", i+1, err)
			}
		}
		closeAll(links)
		time.Sleep(settle)
		c.After = append(c.After, rss.now())
	}
	c.Growth = float64(c.After[k-1])/float64(c.After[0]) - 1
	return c, nil
}
