package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/securestreams/ss/policy"
)

// The Go floor (-floor): the h1 and echo tests made with the standard
// library alone (a connection per GET parsed by net/http.ReadResponse; a
// net.Conn read on the caller's goroutine), against the same servers, with the same counts and
// the same CPU accounting. It is what any Go client pays for the same work
// on this machine: ss over lws is bounded by it, and ss over it is what the
// runtime adds (PERFORMANCE.md, "Against libwebsockets' own Secure Streams
// client").
func measureFloor(file, test string, n int) (*result, error) {
	pol, _, err := policy.ParseFile(file, policy.Options{})
	if err != nil {
		return nil, err
	}
	r := &result{Client: "go", Test: test, N: n, GOMAXPROCS: gomaxprocs()}
	name := map[string]string{"h1": "get", "echo": "bench"}[test]
	if name == "" {
		return nil, fmt.Errorf("-floor -test %q: want h1 or echo", test)
	}
	st := pol.Streamtype(name)
	if st == nil {
		return nil, fmt.Errorf("policy has no streamtype %q", name)
	}
	addr := net.JoinHostPort(st.Endpoint, strconv.Itoa(int(st.Port)))
	if test == "h1" {
		return r, floorH1(r, addr, st.HTTPURL)
	}
	return r, floorEcho(r, addr)
}

// floorH1: a new connection per GET, as ss and lws make for h1: dial,
// write the request, read the response (net/http's parser), close. No
// net/http Transport: its two goroutines per connection are not part of
// the floor (with DisableKeepAlives it measured 244–284 µs of CPU per
// transaction here, as much as ss).
func floorH1(r *result, addr, path string) error {
	req := []byte("GET /" + path + " HTTP/1.1\r\nHost: " + addr + "\r\nConnection: close\r\n\r\n")
	buf := make([]byte, 4096)
	t0, ru0 := time.Now(), rusage()
	for i := range r.N {
		body, err := floorGet(addr, req, buf)
		if err != nil {
			return fmt.Errorf("transaction %d: %w", i+1, err)
		}
		if body != 1024 {
			return fmt.Errorf("transaction %d: body %d bytes, want 1024", i+1, body)
		}
	}
	r.rates(time.Since(t0), rusage()-ru0)
	return nil
}

func floorGet(addr string, req, buf []byte) (int, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %s", resp.Status)
	}
	body := 0
	for {
		n, err := resp.Body.Read(buf)
		body += n
		if errors.Is(err, io.EOF) {
			return body, nil
		}
		if err != nil {
			return body, err
		}
	}
}

// floorEcho: 64 B round trips on one net.Conn, 100 warm-up round trips.
func floorEcho(r *result, addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	// The ssproxy-bench peer: the first byte selects echo.
	if _, err := c.Write(append([]byte{'E'}, msg...)); err != nil {
		return err
	}
	return timeEcho(r, func(send bool) error {
		if send {
			if _, err := c.Write(msg); err != nil {
				return err
			}
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return fmt.Errorf("echo: %w", err)
		}
		return nil
	})
}
