package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/securestreams/ss/policy"
)

// dump prints the resolved policy for humans.
func dump(w io.Writer, file string, p *policy.Policy) {
	fmt.Fprintf(w, "policy %s\n", file)
	fmt.Fprintf(w, "  release:        %s\n", orNone(p.Release))
	fmt.Fprintf(w, "  product:        %s\n", orNone(p.Product))
	fmt.Fprintf(w, "  schema-version: %d\n", p.SchemaVersion)
	fmt.Fprintf(w, "  via-socks5:     %s\n", orNone(p.ViaSOCKS5))
	fmt.Fprintf(w, "  %s, %s, %s, %s, %s, %s\n", plural(len(p.Retry), "retry policy"), plural(len(p.Certs), "certs entry"),
		plural(len(p.TrustStores), "trust store"), plural(len(p.Auth), "auth scheme"), plural(len(p.Metrics), "metrics policy"),
		plural(len(p.Streamtypes), "streamtype"))

	for _, r := range p.Retry {
		fmt.Fprintf(w, "\nretry %s\n  %s\n", r.Name, retryText(r))
	}
	if len(p.Certs) > 0 {
		fmt.Fprintf(w, "\ncerts\n")
		for _, c := range p.Certs {
			fmt.Fprintf(w, "  %s: %s\n", c.Name, certText(c))
		}
	}
	for _, ts := range p.TrustStores {
		names := make([]string, len(ts.Stack))
		for i, c := range ts.Stack {
			names[i] = c.Name
		}
		fmt.Fprintf(w, "\ntrust store %s: %s\n", ts.Name, strings.Join(names, ", "))
	}
	for _, a := range p.Auth {
		fmt.Fprintf(w, "\nauth %s: type %s, blob %d", a.Name, a.Type, a.Blob)
		if a.TypeName != "" && a.TypeName != a.Type.String() {
			fmt.Fprintf(w, " (written %q)", a.TypeName)
		}
		if a.Streamtype != nil {
			fmt.Fprintf(w, ", token refreshed by streamtype %s", a.Streamtype.Name)
		}
		fmt.Fprintln(w)
	}
	for _, m := range p.Metrics {
		fmt.Fprintf(w, "\nmetrics %s: us_schedule %d, us_halflife %d, min_outlier %d, report %q\n",
			m.Name, m.USSchedule, m.USHalflife, m.MinOutlier, m.Report)
	}
	for _, st := range p.Streamtypes {
		dumpStreamtype(w, st)
	}
}

// plural returns "1 thing" or "n things" (policy -> policies, entry -> entries).
func plural(n int, noun string) string {
	if n != 1 {
		switch {
		case strings.HasSuffix(noun, "cy"), strings.HasSuffix(noun, "ry"):
			noun = noun[:len(noun)-1] + "ies"
		default:
			noun += "s"
		}
	}
	return strconv.Itoa(n) + " " + noun
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func retryText(r *policy.Retry) string {
	var b strings.Builder
	if len(r.Backoff) == 0 {
		b.WriteString("backoff: no table (3000 ms base delay)")
	} else {
		parts := make([]string, len(r.Backoff))
		for i, v := range r.Backoff {
			parts[i] = strconv.FormatUint(uint64(v), 10)
		}
		fmt.Fprintf(&b, "backoff: [%s] ms (%d entries)", strings.Join(parts, " "), len(r.Backoff))
	}
	if r.Conceal == 65535 {
		b.WriteString("; conceal: 65535 (retry forever)")
	} else {
		fmt.Fprintf(&b, "; conceal: %d (at most %d attempts in a row)", r.Conceal, int(r.Conceal)+1)
	}
	if r.JitterPct == 0 {
		b.WriteString("; jitter: none")
	} else {
		fmt.Fprintf(&b, "; jitter: %d%%", r.JitterPct)
	}
	if r.SValidHup == 0 {
		b.WriteString("; validity checking off")
	} else {
		fmt.Fprintf(&b, "; svalidping %d s, svalidhup %d s", r.SValidPing, r.SValidHup)
	}
	return b.String()
}

func certText(c *policy.Cert) string {
	switch c.Kind {
	case policy.KindCertificate:
		x := c.Certificate
		return fmt.Sprintf("certificate, subject %s, issuer %s, valid %s to %s, %d bytes",
			x.Subject, x.Issuer, x.NotBefore.UTC().Format("2006-01-02"), x.NotAfter.UTC().Format("2006-01-02"), len(c.DER))
	case policy.KindPrivateKey:
		return fmt.Sprintf("private key (%T), %d bytes", c.PrivateKey, len(c.DER))
	}
	return "unknown kind"
}

func dumpStreamtype(w io.Writer, st *policy.Streamtype) {
	role := "client"
	if st.Server {
		role = "server"
	}
	fmt.Fprintf(w, "\nstreamtype %s (%s %s)\n", st.Name, st.Protocol, role)
	endpoint := orNone(st.Endpoint)
	if st.ListenerOf != nil {
		endpoint += " (shares the listener of " + st.ListenerOf.Name + ")"
	} else if st.EndpointTmpl.HasSubstitutions() {
		endpoint += " (substituted from metadata)"
	}
	fmt.Fprintf(w, "  endpoint:    %s\n", endpoint)
	fmt.Fprintf(w, "  port:        %d\n", st.Port)
	fmt.Fprintf(w, "  protocol:    %s\n", st.Protocol)
	fmt.Fprintf(w, "  tls:         %t\n", st.TLS)
	switch {
	case st.Server && st.TLS:
		fmt.Fprintf(w, "  server cert: %s, key %s\n", st.ServerCertName, st.ServerKeyName)
	case st.Server:
	case st.TrustStore != nil:
		fmt.Fprintf(w, "  trust store: %s (%s)\n", st.TrustStore.Name, plural(len(st.TrustStore.Stack), "certificate"))
	case st.TLS || st.Protocol == policy.H3:
		fmt.Fprintf(w, "  trust store: system roots\n")
	default:
		fmt.Fprintf(w, "  trust store: (no TLS)\n")
	}
	if !st.Server {
		if st.Retry == nil {
			fmt.Fprintf(w, "  retry:       none (the first failure is final)\n")
		} else {
			fmt.Fprintf(w, "  retry:       %s: %s\n", st.Retry.Name, retryText(st.Retry))
		}
		if st.ViaSOCKS5 != "" {
			fmt.Fprintf(w, "  via-socks5:  %s\n", st.ViaSOCKS5)
		}
		if st.UseAuth != nil {
			fmt.Fprintf(w, "  auth:        %s (%s, blob %d)\n", st.UseAuth.Name, st.UseAuth.Type, st.UseAuth.Blob)
		}
		if st.Rideshare != nil {
			fmt.Fprintf(w, "  rideshare:   %s\n", st.Rideshare.Name)
		}
	}
	if len(st.Metadata) == 0 {
		fmt.Fprintf(w, "  metadata:    (none)\n")
	} else {
		items := make([]string, len(st.Metadata))
		for i, m := range st.Metadata {
			items[i] = m.Name
			if m.Header != "" {
				items[i] += " (header " + m.Header + ")"
			}
		}
		fmt.Fprintf(w, "  metadata:    %s\n", strings.Join(items, ", "))
	}
	fmt.Fprintf(w, "  settings:\n")
	for _, s := range st.Settings() {
		fmt.Fprintf(w, "    %s: %s\n", s.Key, s.Value)
	}
}
