package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/securestreams/ss/policy"
)

// logFlags are the logging options.
type logFlags struct {
	level  string
	format string
	debug  bool // -v
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("-log-level %q: want debug, info, warn or error", s)
}

func (f *logFlags) check() error {
	if _, err := parseLevel(f.level); err != nil {
		return err
	}
	switch f.format {
	case "text", "json":
		return nil
	}
	return fmt.Errorf("-log-format %q: want text or json", f.format)
}

// logger builds the daemon's logger on w (stderr).
func (f *logFlags) logger(w io.Writer) *slog.Logger {
	lvl, _ := parseLevel(f.level)
	if f.debug {
		lvl = slog.LevelDebug
	}
	return f.loggerAt(w, lvl)
}

// actorLogger is the logger of the actor system underneath: its own
// INFO and DEBUG lines (system started, actor lifecycles) are noise for an
// operator, so it logs from WARN up whatever the level.
func (f *logFlags) actorLogger(w io.Writer) *slog.Logger {
	lvl, _ := parseLevel(f.level)
	return f.loggerAt(w, max(lvl, slog.LevelWarn)).With("component", "actor")
}

func (f *logFlags) loggerAt(w io.Writer, lvl slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: lvl}
	if f.format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// maxLoggedNames bounds the streamtype names listed in a policy summary.
const maxLoggedNames = 32

// logPolicy logs a summary of p (INFO) and each diagnostic (WARN).
func logPolicy(log *slog.Logger, p *policy.Policy, diags []policy.Diagnostic, source string) {
	var client, server []string
	for _, st := range p.Streamtypes {
		if st.Server {
			server = append(server, st.Name)
		} else {
			client = append(client, st.Name)
		}
	}
	attrs := []any{"source", source, "streamtypes", len(p.Streamtypes),
		"client", namesList(client), "server_ignored", namesList(server)}
	if p.Release != "" || p.Product != "" {
		attrs = append(attrs, "release", p.Release, "product", p.Product)
	}
	log.Info("ssproxy: policy loaded", attrs...)
	for _, d := range diags {
		log.Warn("ssproxy: policy: "+d.String(), "source", source)
	}
}

func namesList(names []string) string {
	if len(names) > maxLoggedNames {
		return strings.Join(names[:maxLoggedNames], ",") + fmt.Sprintf(",… (%d more)", len(names)-maxLoggedNames)
	}
	return strings.Join(names, ",")
}
