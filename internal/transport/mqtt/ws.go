package mqtt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss/internal/auth"
	"github.com/securestreams/ss/internal/transport"
)

// ErrWebSocket is wrapped when an MQTT-over-WebSocket handshake fails.
var ErrWebSocket = errors.New("ss: mqtt over websocket")

// dialWS opens a broker connection as MQTT over WebSocket (policy
// mqtt_ws_path, docs/auth.md): the connection the policy describes (TLS,
// trust store, client certificate, SOCKS5 as usual), then a WebSocket
// handshake to the path offering subprotocol "mqtt". With use_auth naming
// a sigv4 scheme the URL is presigned (auth.PresignWebSocket) at every call,
// so each connection attempt carries a fresh signature. MQTT packets travel
// in binary messages.
func dialWS(ctx context.Context, a *transport.Attempt, ep *transport.Endpoint, timing *transport.Timing) (net.Conn, error) {
	st := a.Type
	host := ep.HostHeader()
	target := st.MQTTWSPath
	if transport.UsesSigV4(st) {
		creds, err := transport.AWSCredentials(ctx, a)
		if err != nil {
			return nil, err
		}
		region, _ := a.Lookup(st.AWSRegion)
		service := auth.IoTService
		if s, ok := a.Lookup(st.AWSService); ok && s != "" {
			service = s
		}
		signed, err := auth.PresignWebSocket(ctx, creds, auth.Presign{Scheme: "wss", Host: host, Path: target, Region: region, Service: service})
		if err != nil {
			return nil, err
		}
		u, err := url.Parse(signed)
		if err != nil {
			return nil, fmt.Errorf("%w: presigned URL: %w", ErrWebSocket, err)
		}
		target = u.RequestURI()
	}
	var alpn []string
	if ep.TLS {
		alpn = []string{"http/1.1"}
	}
	conn, err := transport.Dial(ctx, a, ep, transport.DialOptions{ALPN: alpn}, timing)
	if err != nil {
		return nil, err
	}
	d := websocket.Dialer{
		NetDialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil },
		Subprotocols:   []string{"mqtt"},
	}
	// The connection is already TLS when the policy says so: gorilla speaks
	// plain ws over it.
	ws, resp, err := d.DialContext(ctx, "ws://"+host+target, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		_ = conn.Close()
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, fmt.Errorf("%w: handshake to %s refused: %w", ErrWebSocket, st.MQTTWSPath, &transport.StatusError{Code: resp.StatusCode, Status: resp.Status})
		}
		return nil, fmt.Errorf("%w: handshake to %s: %w", ErrWebSocket, st.MQTTWSPath, err)
	}
	if ws.Subprotocol() != "mqtt" {
		_ = ws.Close()
		return nil, fmt.Errorf("%w: the server chose subprotocol %q, want \"mqtt\"", ErrWebSocket, ws.Subprotocol())
	}
	return &wsConn{ws: ws}, nil
}

// wsConn is a net.Conn over a WebSocket: each Write is one binary message,
// Read returns the bytes of consecutive messages (MQTT packets may span
// messages or share one). One goroutine reads (paho's), writes are
// serialised.
type wsConn struct {
	ws  *websocket.Conn
	r   io.Reader // the message being read
	wmu sync.Mutex
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, fmt.Errorf("%w: the broker sent a text message", ErrWebSocket)
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close sends a close frame (bounded by a short deadline) and closes the
// connection.
func (c *wsConn) Close() error {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	return c.ws.Close()
}

func (c *wsConn) LocalAddr() net.Addr                { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr               { return c.ws.RemoteAddr() }
func (c *wsConn) SetDeadline(t time.Time) error      { return c.ws.NetConn().SetDeadline(t) }
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }
