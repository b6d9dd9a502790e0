package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

// httpPolicy has an HTTP/1.1 server streamtype. Its metadata declares the
// request fields the application wants (method, path and the query argument
// "name") and maps "mime" to the Content-Type response header.
const httpPolicy = `{
  "release": "quickstart",
  "s": [{
    "http_server": {
      "server": true, "protocol": "h1", "endpoint": "127.0.0.1", "port": %[1]d,
      "metadata": [{ "method": "", "path": "", "name": "", "mime": "content-type:" }]
    }
  }]
}`

// httpServe runs an ss HTTP server stream: each request is a SERVER_TXN on
// an accepted stream, with the request line and query argument as metadata
// and the request body as rx; the application answers with Respond, mapped
// metadata (Content-Type) and Send. A plain net/http client is the peer.
func httpServe(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	p, diags, err := policy.Parse([]byte(fmt.Sprintf(httpPolicy, port)), policy.Options{})
	for _, d := range diags {
		fmt.Println("policy:", d)
	}
	if err != nil {
		return err
	}
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	srv, err := rt.Serve(ctx, "http_server")
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	go func() {
		for acc := range srv.Accepted() {
			wg.Go(func() { answerHTTP(ctx, acc) })
		}
	}()

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, req := range []struct{ method, url, body string }{
		{http.MethodGet, base + "/hello?name=gopher", ""},
		{http.MethodPost, base + "/echo", "ping"},
	} {
		r, err := http.NewRequestWithContext(ctx, req.method, req.url, strings.NewReader(req.body))
		if err != nil {
			return err
		}
		resp, err := c.Do(r)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		fmt.Printf("client: %s %s -> %d %s %q\n", req.method, strings.TrimPrefix(req.url, base), resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if err := srv.Close(ctx); err != nil {
		return err
	}
	wg.Wait()
	if n := rt.Stats().IllegalTransitions; n != 0 {
		return fmt.Errorf("%d illegal state transitions", n)
	}
	return nil
}

// answerHTTP serves one accepted connection: GET is answered at SERVER_TXN
// (no body follows), other methods once the request body's EOM has arrived.
// It prints the stream's events when the stream ends.
func answerHTTP(ctx context.Context, acc *ss.Stream) {
	var events []string
	var body []byte
	reply := func() {
		method, _ := acc.Metadata("method")
		path, _ := acc.Metadata("path")
		name, _ := acc.Metadata("name")
		_ = acc.SetMetadata("mime", "text/plain")
		switch {
		case method == http.MethodGet && path == "/hello":
			_ = acc.Respond(200)
			_ = acc.Send(ctx, []byte("hello, "+name))
		case method == http.MethodPost:
			_ = acc.Respond(201)
			_ = acc.Send(ctx, append([]byte("you sent: "), body...))
		default:
			// No Respond: the response is a 404.
			_ = acc.Send(ctx, []byte("not here"))
		}
		body = nil
	}
	for ev := range acc.Events() {
		switch ev.Kind {
		case ss.StateEvent:
			events = append(events, ev.State.String())
			if ev.State == ss.ServerTxn {
				if m, _ := acc.Metadata("method"); m == http.MethodGet {
					reply()
				}
			}
		case ss.PayloadEvent:
			events = append(events, fmt.Sprintf("rx(%v,%q)", ev.Flags, ev.Payload))
			body = append(body, ev.Payload...)
			if ev.Flags&ss.EOM != 0 {
				reply()
			}
		}
	}
	fmt.Println("server stream:", strings.Join(events, " "))
}
