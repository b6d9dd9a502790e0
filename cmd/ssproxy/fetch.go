package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/securestreams/ss"
)

func init() { register(fetchPolicy) }

// fetchPolicy is the -fetch feature: run the policy's fetch_policy
// streamtype at startup, before links are accepted, and after each SIGHUP
// reload (docs/fetch-policy.md). Without -fetch the proxy does not fetch.
func fetchPolicy(fs *flag.FlagSet) hooks {
	fetch := fs.Bool("fetch", false, "fetch the policy with its fetch_policy streamtype at startup (before accepting clients) and after each SIGHUP reload; a failure is logged and the policy file stays in use")
	keyFile := fs.String("fetch-key", "", "`file` of Ed25519 public keys (one per line, base64 or hex; # comments): fetched policies must be signed by one of them and not be older than the installed release")
	timeout := fs.Duration("fetch-timeout", 30*time.Second, "time limit of the startup fetch")
	var keys []ed25519.PublicKey
	run := func(ctx context.Context, d *daemon, when string) {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		p, err := d.Runtime().FetchPolicy(ctx)
		if err != nil {
			d.Logger.Warn("ssproxy: fetch_policy failed, keeping the current policy", "when", when, "err", err)
			return
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		logPolicy(d.Logger, p, nil, "fetch_policy")
	}
	return hooks{
		Check: func() error {
			if *keyFile != "" && !*fetch {
				return errors.New("-fetch-key needs -fetch")
			}
			if *timeout <= 0 {
				return fmt.Errorf("-fetch-timeout must be positive, got %v", *timeout)
			}
			if *keyFile == "" {
				return nil
			}
			var err error
			keys, err = readKeys(*keyFile)
			return err
		},
		Configure: func(d *daemon, cfg *ss.Config) error {
			cfg.PolicyFetch.NoFetchAtStart = true // only with -fetch, below
			cfg.PolicyFetch.Keys = keys
			return nil
		},
		Start: func(ctx context.Context, d *daemon) (func(context.Context), error) {
			if *fetch {
				run(ctx, d, "startup")
			}
			return nil, nil
		},
		Reload: func(ctx context.Context, d *daemon) error {
			if *fetch {
				run(ctx, d, "reload")
			}
			return nil
		},
	}
}

// readKeys reads Ed25519 public keys, one per line as base64 or hex.
func readKeys(path string) ([]ed25519.PublicKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("-fetch-key: %w", err)
	}
	defer f.Close()
	var keys []ed25519.PublicKey
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(k) != ed25519.PublicKeySize {
			k, err = hex.DecodeString(line)
		}
		if err != nil || len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("-fetch-key %s:%d: not a 32-byte Ed25519 public key in base64 or hex", path, n)
		}
		keys = append(keys, ed25519.PublicKey(k))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("-fetch-key: %w", err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("-fetch-key %s: no keys", path)
	}
	return keys, nil
}
