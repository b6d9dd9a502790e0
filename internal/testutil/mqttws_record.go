package testutil

import "io"

// maxFrontURLs bounds what a WSFront records.
const maxFrontURLs = 64

func (f *WSFront) record(uri string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.urls) < maxFrontURLs {
		f.urls = append(f.urls, uri)
	}
}

// URLs returns the request URIs (path and query, e.g. a presigned
// X-Amz-* query) of the handshakes the front accepted, oldest first (at
// most the first 64).
func (f *WSFront) URLs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.urls...)
}

// Drop closes every connection through the front (both the WebSocket and
// its broker side) and keeps serving new handshakes: the client sees its
// broker connection lost.
func (f *WSFront) Drop() {
	f.mu.Lock()
	cs := f.conns
	f.conns = map[io.Closer]struct{}{}
	f.mu.Unlock()
	for c := range cs {
		_ = c.Close()
	}
}
