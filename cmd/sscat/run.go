package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

const usageHead = `sscat creates one Secure Stream of a policy's streamtype, sends data if given, and copies
the payload it receives to standard output.

Usage:
  sscat -policy FILE STREAMTYPE [flags]
  sscat -proxy ADDRESS STREAMTYPE [flags]

When it ends:
  HTTP (h1, h2, h3)  after the transaction: exit 0 on QOS_ACK_REMOTE (2xx), 1 on
                     QOS_NACK_REMOTE (another status) or when every retry failed
  ws, mqtt, raw      after -count received messages, when the connection closes, on
                     interrupt or -timeout (exit 0); when every retry failed or a
                     message was refused (exit 1); an mqtt streamtype that only
                     publishes ends when its message is acknowledged
Exit status 2 is a usage error.

Flags:
`

// metaFlags collects repeated -m name=value flags.
type metaFlags []string

func (m *metaFlags) String() string { return strings.Join(*m, ",") }
func (m *metaFlags) Set(v string) error {
	name, _, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("want name=value, got %q", v)
	}
	*m = append(*m, v)
	return nil
}

// options are the parsed command line.
type options struct {
	policyFile, proxy, data string
	streamtype              string
	meta                    metaFlags
	verbose                 bool
	count                   int
	timeout                 time.Duration
}

func parse(args []string, stdout, stderr io.Writer) (*options, int) {
	o := &options{}
	fs := flag.NewFlagSet("sscat", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.policyFile, "policy", "", "policy `FILE` (JSON); required unless -proxy is given")
	fs.StringVar(&o.proxy, "proxy", "", "fulfil the stream through the SS proxy at `ADDRESS` (unix:@proxy.ss.lws, unix:/path or tcp:host:port)")
	fs.Var(&o.meta, "m", "set metadata `name=value` before the stream starts (repeatable)")
	fs.StringVar(&o.data, "d", "", "send `DATA` as one message: @FILE reads a file, - reads standard input, anything else is sent as is")
	fs.BoolVar(&o.verbose, "v", false, "print every state (and its cause) to standard error")
	fs.IntVar(&o.count, "count", 0, "ws, mqtt, raw: exit after `N` received messages (raw: chunks); 0 means no limit")
	fs.DurationVar(&o.timeout, "timeout", 0, "give up after `D` (HTTP: exit 1; other protocols: end normally); 0 means no limit")
	help := func(w io.Writer) {
		io.WriteString(w, usageHead)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	bad := func(format string, a ...any) (*options, int) {
		fmt.Fprintf(stderr, "sscat: %s\nusage: sscat -policy FILE STREAMTYPE [-m name=value]... [-d @file|-|text] [-v] (sscat -h for help)\n", fmt.Sprintf(format, a...))
		return nil, 2
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				help(stdout)
				return nil, 0
			}
			return bad("%v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case len(pos) == 0:
		return bad("no STREAMTYPE given")
	case len(pos) > 1:
		return bad("one STREAMTYPE expected, got %q", pos)
	case o.policyFile == "" && o.proxy == "":
		return bad("-policy FILE or -proxy ADDRESS is required")
	case o.count < 0:
		return bad("-count must be ≥ 0")
	}
	o.streamtype = pos[0]
	return o, -1
}

// run is sscat with its inputs and outputs; it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, code := parse(args, stdout, stderr)
	if o == nil {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "sscat: "+format+"\n", a...)
		return 1
	}
	var data []byte
	if o.data != "" {
		var err error
		switch {
		case o.data == "-":
			data, err = io.ReadAll(stdin)
		case strings.HasPrefix(o.data, "@"):
			data, err = os.ReadFile(o.data[1:])
		default:
			data = []byte(o.data)
		}
		if err != nil {
			return fail("-d: %v", err)
		}
	}
	cfg := ss.Config{Proxy: o.proxy}
	if o.policyFile != "" {
		p, diags, err := policy.ParseFile(o.policyFile, policy.Options{})
		for _, d := range diags {
			fmt.Fprintf(stderr, "%s:%s\n", o.policyFile, d)
		}
		if err != nil {
			return fail("%s: %v", o.policyFile, err)
		}
		cfg.Policy = p
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	rt, err := ss.New(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return fail("%v", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Close(cctx)
	}()
	var opts []ss.Option
	for _, kv := range o.meta {
		name, value, _ := strings.Cut(kv, "=")
		opts = append(opts, ss.WithMetadata(name, value))
	}
	s, err := rt.Create(ctx, o.streamtype, opts...)
	if err != nil {
		return fail("%v", err)
	}
	c := &cat{o: o, s: s, stdout: stdout, stderr: stderr, kind: kindOf(cfg.Policy, o.streamtype)}
	return c.loop(ctx, data)
}

// streamKind is what decides when sscat is done.
type streamKind int

const (
	kindUnknown     streamKind = iota // proxied, streamtype not in a local policy
	kindHTTP                          // one transaction
	kindPublishOnly                   // mqtt without a subscription
	kindLong                          // ws, mqtt with a subscription, raw
)

func kindOf(p *policy.Policy, name string) streamKind {
	if p == nil {
		return kindUnknown
	}
	st := p.Streamtype(name)
	if st == nil {
		return kindUnknown
	}
	switch st.Protocol {
	case policy.H1, policy.H2, policy.H3:
		return kindHTTP
	case policy.MQTT:
		if st.MQTTSubscribe == "" {
			return kindPublishOnly
		}
	}
	return kindLong
}
