// Package proxy holds what a program that runs or reaches a Secure Streams
// proxy needs besides package ss: proxy addresses (ParseAddress, Listen,
// DefaultAddress), the limits a proxy server enforces on its untrusted
// clients (ServerLimits, set through ss.Config.ProxyLimits for
// Runtime.ServeProxy, or the ssproxy flags), and the causes a proxied stream
// reports in Event.Err (ErrLinkLost, ReportedError).
//
// The proxy itself is Runtime.ServeProxy in package ss, or the ssproxy
// command; a client runtime reaches it with ss.Config.Proxy. The SSSv1 wire
// protocol they speak is described in docs/wire.md and docs/proxy.md.
package proxy
