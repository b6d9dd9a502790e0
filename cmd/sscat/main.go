// Command sscat is curl/websocat for Secure Streams: it creates one stream of
// any streamtype of a policy, sends data if given, prints the payload it
// receives to standard output and, with -v, every state to standard error.
//
//	sscat -policy P STREAMTYPE [-m name=value]... [-d @file|-|text] [-v]
//	sscat -proxy unix:@proxy.ss.lws STREAMTYPE ...
//
// It is how to poke an endpoint defined by a policy: the policy says where and
// how; sscat only names the streamtype. Run "sscat -h" for every flag and
// when it exits.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
