// Package ssbridge gives the module's own commands and tests the parts of
// package ss that are not its public API: the proxy server behind
// Runtime.ServeProxy (cmd/ssproxy sets its limits and hooks) and the advisory
// SSSv1 transmit credit of a proxied stream (docs/wire.md §7.1). Package ss
// fills the functions in its init, so they are set once ss is imported; the
// arguments are a *ss.Runtime and a *ss.Stream (this package cannot import ss).
package ssbridge

import "github.com/securestreams/ss/internal/proxy"

var (
	// ProxyServer returns a proxy server whose onward streams are the
	// runtime's streams; call its Serve method with a listener.
	ProxyServer func(rt any) *proxy.Server
	// TxCredit is the credit the onward peer granted a proxied stream
	// minus the payload sent since; 0 for a local stream.
	TxCredit func(s any) int64
	// EstPeerTxCredit is the estimate of the onward peer's credit; 0 for a
	// local stream.
	EstPeerTxCredit func(s any) int64
	// AddPeerTxCredit grants the onward peer n more bytes (TXCR_UPDATE);
	// nothing on a local stream.
	AddPeerTxCredit func(s any, n int32)
)
