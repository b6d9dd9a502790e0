package ss

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/securestreams/ss/policy"
)

// fetchPolicyName is the system streamtype that fetches a new policy.
const fetchPolicyName = "fetch_policy"

const (
	// defaultPolicyMaxSize bounds a fetched policy (PolicyFetchConfig.MaxSize).
	defaultPolicyMaxSize = 1 << 20
	// maxSignatureSize bounds a fetched signature file (base64 of 64 bytes
	// is 88; hex 128; room for whitespace and a trailing newline).
	maxSignatureSize = 1024
	// fetchOutcomes is how many outcomes PolicyReady buffers.
	fetchOutcomes = 8
)

// Errors of fetch_policy (docs/fetch-policy.md). Each outcome's error wraps
// ErrPolicyFetch and, where one applies, a more precise sentinel.
var (
	// ErrPolicyFetch is wrapped by every failed fetch.
	ErrPolicyFetch = errors.New("ss: policy fetch failed")
	// ErrNoFetchPolicy: the installed policy has no fetch_policy streamtype.
	ErrNoFetchPolicy = errors.New("ss: the policy has no fetch_policy streamtype")
	// ErrPolicyTooLarge: the body exceeded PolicyFetchConfig.MaxSize.
	ErrPolicyTooLarge = errors.New("ss: fetched policy exceeds the size limit")
	// ErrPolicySignature: PolicyFetchConfig.Keys is set and the signature
	// is missing, malformed, or made by none of the keys.
	ErrPolicySignature = errors.New("ss: fetched policy signature is not valid")
	// ErrPolicyReplay: a signed policy whose release is older than the
	// newest one installed (or PolicyFetchConfig.MinRelease), or has none.
	ErrPolicyReplay = errors.New("ss: fetched policy release is older than the installed one")
	// ErrProxiedSystem: system streamtypes (fetch_policy,
	// captive_portal_detect) run in the SS proxy, not in a proxied runtime.
	ErrProxiedSystem = errors.New("ss: system streamtypes run in the proxy, not in a proxied runtime")
)

// PolicyFetchConfig configures fetch_policy (docs/fetch-policy.md). The
// zero value fetches at New when the policy has a fetch_policy streamtype,
// limits the body to 1 MiB and accepts unsigned policies.
type PolicyFetchConfig struct {
	// NoFetchAtStart: New does not fetch; Runtime.FetchPolicy still does.
	NoFetchAtStart bool
	// MaxSize bounds the fetched body in bytes (0: 1 MiB); a larger body
	// fails the fetch with ErrPolicyTooLarge.
	MaxSize int64
	// Keys, when not empty, makes signatures mandatory: the body must carry
	// a detached Ed25519 signature by one of them, and its "release" must
	// not be older than that of any signed policy installed before (nor
	// than MinRelease).
	Keys []ed25519.PublicKey
	// SignatureMetadata names a metadata item of the fetch_policy
	// streamtype mapped to a response header (for example
	// {"sig": "x-policy-signature:"}) that carries the signature. Empty:
	// the signature is fetched from the policy's URL with ".sig" appended.
	// The signature is 64 bytes raw, or their base64 or hex text.
	SignatureMetadata string
	// MinRelease is the oldest release accepted for a signed policy, for an
	// application that persists the newest release it has seen.
	MinRelease string
}

// PolicyFetch is the outcome of one fetch_policy run.
type PolicyFetch struct {
	// Policy is the fetched policy, now installed; nil when the fetch failed
	// (the installed policy is unchanged).
	Policy *policy.Policy
	// Diagnostics are the parser's warnings for Policy, or its errors when
	// the body did not parse.
	Diagnostics []policy.Diagnostic
	// Err is why the fetch failed (wrapping ErrPolicyFetch), nil on success.
	Err error
}

// fetcher runs fetch_policy: one fetch at a time, outcomes on a bounded
// channel.
type fetcher struct {
	sys *system
	sem chan struct{}

	mu     sync.Mutex
	floor  string // newest signed release installed (or MinRelease)
	out    chan PolicyFetch
	closed bool
}

func newFetcher(sys *system) *fetcher {
	f := &fetcher{sys: sys, sem: make(chan struct{}, 1), out: make(chan PolicyFetch, fetchOutcomes), floor: sys.cfg.PolicyFetch.MinRelease}
	if p := sys.cfg.Policy; p != nil && len(sys.cfg.PolicyFetch.Keys) > 0 && compareRelease(p.Release, f.floor) > 0 {
		f.floor = p.Release
	}
	return f
}

// FetchPolicy runs the policy's fetch_policy streamtype now
// (docs/fetch-policy.md): it GETs the new policy, checks its size, its
// signature and release (when PolicyFetchConfig.Keys is set), parses it and
// installs it. The installed policy stays in use throughout and is kept on
// any failure. It returns the installed policy, or an error wrapping
// ErrPolicyFetch; the outcome is also sent to PolicyReady. A call made while
// a fetch runs waits for it and then fetches again.
func (rt *Runtime) FetchPolicy(ctx context.Context) (*policy.Policy, error) {
	if rt.proxy != nil {
		return nil, ErrProxiedSystem
	}
	ctx, done := rt.sys.bind(ctx)
	defer done()
	return rt.sys.fetch.run(ctx)
}

// PolicyReady delivers the outcome of every fetch_policy run (the one New
// starts, and FetchPolicy calls), in order. It is buffered: when the
// application has not read the last 8 outcomes, the oldest is dropped, so a
// reader always finds the newest. It is closed when the runtime is closed.
func (rt *Runtime) PolicyReady() <-chan PolicyFetch { return rt.sys.fetch.out }

func (f *fetcher) run(ctx context.Context) (*policy.Policy, error) {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrPolicyFetch, ctx.Err())
	}
	defer func() { <-f.sem }()
	p, diags, err := f.fetchOnce(ctx)
	log := f.sys.rt.env.Logger
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrPolicyFetch, err)
		log.Warn("ss: fetch_policy failed; the installed policy is kept", "err", err)
		p = nil
	} else {
		log.Info("ss: fetch_policy installed a new policy", "release", p.Release, "streamtypes", len(p.Streamtypes), "warnings", len(diags))
	}
	f.publish(PolicyFetch{Policy: p, Diagnostics: diags, Err: err})
	return p, err
}

// publish queues o, dropping the oldest outcome when the buffer is full.
func (f *fetcher) publish(o PolicyFetch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		offer(f.out, o)
	}
}

func (f *fetcher) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.out)
	}
}

func (f *fetcher) fetchOnce(ctx context.Context) (*policy.Policy, []policy.Diagnostic, error) {
	rt, cfg := f.sys.rt, &f.sys.cfg.PolicyFetch
	pol := rt.pol.Load()
	st := pol.Streamtype(fetchPolicyName)
	if st == nil {
		return nil, nil, ErrNoFetchPolicy
	}
	limit := cfg.MaxSize
	if limit <= 0 {
		limit = defaultPolicyMaxSize
	}
	body, sigHeader, err := rt.fetchBody(ctx, pol, st, limit, cfg.SignatureMetadata)
	if err != nil {
		return nil, nil, err
	}
	signed := len(cfg.Keys) > 0
	if signed {
		sigText := []byte(sigHeader)
		if cfg.SignatureMetadata == "" {
			sst, err := signatureStreamtype(st)
			if err != nil {
				return nil, nil, err
			}
			if sigText, _, err = rt.fetchBody(ctx, pol, sst, maxSignatureSize, ""); err != nil {
				return nil, nil, fmt.Errorf("%w: fetching %s: %w", ErrPolicySignature, sst.HTTPURL, err)
			}
		}
		if err := verifyPolicy(body, sigText, cfg.Keys); err != nil {
			return nil, nil, err
		}
	}
	// Bytes only: a body that is not a JSON object (an HTML error page) is
	// a parse error, never a file name.
	np, diags, err := policy.Parse(body, policy.Options{})
	if err != nil {
		return nil, diags, fmt.Errorf("the fetched body is not a valid policy: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if signed {
		if np.Release == "" {
			return nil, diags, fmt.Errorf("%w: a signed policy must have a \"release\"", ErrPolicyReplay)
		}
		if compareRelease(np.Release, f.floor) < 0 {
			return nil, diags, fmt.Errorf("%w: release %q is older than %q", ErrPolicyReplay, np.Release, f.floor)
		}
		f.floor = np.Release
	}
	if err := rt.SetPolicy(np); err != nil {
		return nil, diags, err
	}
	return np, diags, nil
}

// fetchBody runs one GET with a stream of st and returns the whole body of
// a successful (QOS_ACK_REMOTE) response, and the value of the metadata
// item sigMeta when named. It fails on QOS_NACK_REMOTE, ALL_RETRIES_FAILED,
// TIMEOUT, a connection lost before the body was complete (opportunistic
// streamtypes; others retry), a body over limit, and when ctx is done.
func (rt *Runtime) fetchBody(ctx context.Context, pol *policy.Policy, st *policy.Streamtype, limit int64, sigMeta string) ([]byte, string, error) {
	s, err := rt.createSystemStream(pol, st, rt.gatesFor(st))
	if err != nil {
		return nil, "", err
	}
	defer drainDestroy(s)
	if st.TimeoutMS > 0 {
		_ = s.StartTimeout(0) // timeout_ms
	}
	if err := s.RequestTx(); err != nil {
		return nil, "", err
	}
	var body []byte
	nacked := false
	for {
		ev, err := nextEvent(ctx, s)
		if err != nil {
			return nil, "", err
		}
		if ev.Kind == PayloadEvent {
			if ev.Flags&PerfJSON != 0 {
				continue
			}
			if int64(len(body))+int64(len(ev.Payload)) > limit {
				return nil, "", fmt.Errorf("%w (%d bytes)", ErrPolicyTooLarge, limit)
			}
			body = append(body, ev.Payload...)
			continue
		}
		switch ev.State {
		case Connecting:
			body = body[:0] // a new attempt sends the whole body again
		case QoSAckRemote:
			sig := ""
			if sigMeta != "" {
				sig, _ = s.Metadata(sigMeta)
			}
			return body, sig, nil
		case QoSNackRemote:
			nacked = true
		case Disconnected:
			switch {
			case nacked:
				return nil, "", fmt.Errorf("the server refused the request: %w", causeOr(ev.Err, "QOS_NACK_REMOTE"))
			case st.Opportunistic:
				return nil, "", fmt.Errorf("connection lost before the body was complete: %w", causeOr(ev.Err, "DISCONNECTED"))
			}
		case AllRetriesFailed:
			return nil, "", causeOr(ev.Err, "ALL_RETRIES_FAILED")
		case Timeout:
			return nil, "", causeOr(ev.Err, "TIMEOUT")
		case Destroying:
			return nil, "", ErrClosed
		}
	}
}

// causeOr is err, or an error naming the state when there is none.
func causeOr(err error, state string) error {
	if err != nil {
		return err
	}
	return errors.New("ss: " + state)
}

// drainDestroy destroys a system stream and reads its remaining events.
func drainDestroy(s *Stream) {
	_ = s.Destroy(context.Background())
	for range s.Events() {
	}
}

// signatureStreamtype derives the streamtype that fetches the detached
// signature: the fetch_policy streamtype with ".sig" appended to the
// request path (the endpoint URL's path when it has one, else http_url).
func signatureStreamtype(st *policy.Streamtype) (*policy.Streamtype, error) {
	sst := *st
	if i := strings.Index(st.Endpoint, "://"); i >= 0 && strings.Contains(st.Endpoint[i+3:], "/") {
		sst.Endpoint, sst.EndpointTmpl = st.Endpoint+".sig", appendLiteral(st.EndpointTmpl, ".sig")
	} else {
		sst.HTTPURL, sst.HTTPURLTmpl = st.HTTPURL+".sig", appendLiteral(st.HTTPURLTmpl, ".sig")
	}
	if strings.Contains(sst.HTTPURL, "?") || strings.Contains(sst.Endpoint, "?") {
		return nil, fmt.Errorf("%w: the fetch_policy URL has a query; serve the signature in a header (PolicyFetchConfig.SignatureMetadata)", ErrPolicySignature)
	}
	return &sst, nil
}

// appendLiteral returns t followed by lit (nil stays nil: the raw string
// is used).
func appendLiteral(t *policy.Template, lit string) *policy.Template {
	if t == nil {
		return nil
	}
	parts := append(append([]policy.TemplatePart(nil), t.Parts...), policy.TemplatePart{Lit: lit, Meta: -1})
	return &policy.Template{Raw: t.Raw + lit, Parts: parts}
}

// verifyPolicy checks body against a detached Ed25519 signature given as
// 64 raw bytes or as their base64 or hex text.
func verifyPolicy(body, sigText []byte, keys []ed25519.PublicKey) error {
	sig, err := decodeSignature(sigText)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if len(k) == ed25519.PublicKeySize && ed25519.Verify(k, body, sig) {
			return nil
		}
	}
	return fmt.Errorf("%w: made by none of the %d configured keys", ErrPolicySignature, len(keys))
}

func decodeSignature(b []byte) ([]byte, error) {
	if len(b) == ed25519.SignatureSize {
		return b, nil
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return nil, fmt.Errorf("%w: no signature", ErrPolicySignature)
	}
	for _, dec := range []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString, hex.DecodeString,
	} {
		if sig, err := dec(t); err == nil && len(sig) == ed25519.SignatureSize {
			return sig, nil
		}
	}
	return nil, fmt.Errorf("%w: expected 64 bytes (raw, base64 or hex), got %d bytes of text", ErrPolicySignature, len(t))
}

// compareRelease orders release identifiers naturally: runs of digits
// compare as numbers, other runs as strings ("2026.9" < "2026.10",
// "1.2-rc1" < "1.2-rc2"). "" is older than anything.
func compareRelease(a, b string) int {
	for a != "" && b != "" {
		ra, resta := releaseRun(a)
		rb, restb := releaseRun(b)
		da, db := isDigit(ra[0]), isDigit(rb[0])
		switch {
		case da && db:
			na, nb := strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
			if len(na) != len(nb) {
				return cmpInt(len(na), len(nb))
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
		case da != db:
			if da {
				return 1 // "1.10" > "1.x": numbers sort after text
			}
			return -1
		default:
			if c := strings.Compare(ra, rb); c != 0 {
				return c
			}
		}
		a, b = resta, restb
	}
	return cmpInt(len(a), len(b))
}

func releaseRun(s string) (run, rest string) {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i], s[i:]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
