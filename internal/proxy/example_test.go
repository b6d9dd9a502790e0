package proxy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/proxy"
)

// A client's first frames, batched into one buffer (docs/wire.md §10).
func ExampleAppend() {
	b, err := proxy.Append(nil,
		&proxy.StreamType{PID: 0x1234, Credit: proxy.DefaultCredit, Name: "mintest"},
		&proxy.PayloadLengthHint{Length: 5},
	)
	fmt.Printf("% X\n", b)
	fmt.Println(err)
	// Output:
	// AA 00 10 01 00 00 12 34 1D CD 65 00 6D 69 6E 74 65 73 74 B1 00 04 00 00 00 05
	// <nil>
}

// A client's read loop over what a proxy sent.
func ExampleDecoder() {
	var wire []byte
	wire, _ = proxy.Append(wire,
		&proxy.CreateResult{Rideshares: []string{"mintest"}},
		&proxy.ConnState{State: event.Creating},
		&proxy.ConnState{State: event.Connected},
		&proxy.RxPayload{Flags: event.SOM | event.EOM, Payload: []byte("world")},
	)
	wire = append(wire, 0xAB, 0, 0) // ONWARD_CONNECT is not valid from a proxy

	dec := proxy.NewDecoder(bytes.NewReader(wire), proxy.ProxyToClient, proxy.Limits{})
	for {
		msg, err := dec.Next()
		var fe *proxy.FrameError
		switch {
		case err == io.EOF:
			fmt.Println("end of link")
			return
		case errors.As(err, &fe):
			fmt.Println("close the link:", fe.Code, errors.Is(err, proxy.ErrWrongDirection), fe.Offset)
			return
		case err != nil:
			fmt.Println("read error:", err)
			return
		}
		switch m := msg.(type) {
		case *proxy.CreateResult:
			fmt.Println("created:", m.OK(), m.Rideshares)
		case *proxy.ConnState:
			fmt.Println("state:", m.State)
		case *proxy.RxPayload:
			fmt.Printf("rx %v %q\n", m.Flags, m.Payload) // m.Payload is ours to keep
		}
	}
	// Output:
	// created: true [mintest]
	// state: CREATING
	// state: CONNECTED
	// rx SOM|EOM "world"
	// close the link: ONWARD_CONNECT true 56
}

// Push-style parsing of bytes arriving in arbitrary pieces.
func ExampleParse() {
	pieces := [][]byte{{0x57, 0x00}, {0x05, 0x06, 0, 0, 0, 0, 0x57, 0x00, 0x05}, {0x05, 0, 0, 0, 0}}
	var buf []byte
	for _, p := range pieces {
		buf = append(buf, p...)
		for {
			msg, n, err := proxy.Parse(proxy.ProxyToClient, buf, proxy.Limits{})
			if err != nil {
				fmt.Println(err)
				return
			}
			if msg == nil {
				break // need more bytes
			}
			fmt.Println(msg.(*proxy.ConnState).State)
			buf = buf[n:]
		}
	}
	// Output:
	// CONNECTING
	// CONNECTED
}
