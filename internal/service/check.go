package service

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/cli"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/store/postgres"
)

// Check refuses the options that serve cannot run with, instead of
// silently using a default: a usage error with one line per value, named
// by serve's flag and where its value came from (src).
func (o Options) Check(src cli.Sources) error {
	var bad []string
	want := func(name string, ok bool, value any, what string) {
		if !ok {
			bad = append(bad, fmt.Sprintf("--%s %v%s: %s", name, value, src.From(name), what))
		}
	}
	w := o.Worker
	want("concurrency", w.Concurrency > 0, w.Concurrency, "want 1 or more steps at once")
	want("max-steps", w.MaxSteps >= w.Concurrency, w.MaxSteps, "want at least --concurrency")
	want("max-attempts", w.Retry.MaxAttempts > 0, w.Retry.MaxAttempts, "want 1 or more calls per step")
	want("database-url", o.DatabaseURL == "" || postgres.IsURL(o.DatabaseURL), postgres.Redact(o.DatabaseURL),
		"want a postgres:// URL, or leave it unset for SQLite under --data-dir")
	want("stream-replicas", w.Streams.Replicas > 0, w.Streams.Replicas, "want 1 or more (3 on a NATS cluster)")
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"confirm-interval", w.ConfirmInterval}, {"confirm-timeout", w.ConfirmTimeout},
		{"sud-execute-timeout", w.SUDExecuteTimeout}, {"outage-hold", w.OutageHold}, {"status-max-age", w.Streams.StatusMaxAge},
	} {
		want(d.name, d.v > 0, d.v, "want a positive duration like 15s or 2m")
	}
	want("retention", o.Retention >= 0, o.Retention, "want a duration like 720h, or 0 to keep every order")
	maxBytes := cli.ByteSize(w.Streams.StatusMaxBytes)
	want("status-max-bytes", maxBytes > 0, maxBytes.String(), "want a size like 256MiB")
	want("sud-notify-path", o.NotifyPath == "" || strings.HasPrefix(o.NotifyPath, "/"), fmt.Sprintf("%q", o.NotifyPath),
		`want a path starting with "/", or "" for none`)
	if len(bad) > 0 {
		return cli.UsageError{Msg: strings.Join(bad, "\n")}
	}
	return nil
}

// explain says what to do about an error of Run that an operator can
// fix: the embedded JetStream's disk limit when a stream does not fit.
func explain(err error, opts Options) error {
	if opts.NATSURL == "" && errors.Is(err, events.ErrStreamStorage) {
		free, _ := embednats.FreeBytes(opts.DataDir)
		maxStore := "75% of the free disk"
		if opts.JSMaxStore != 0 {
			maxStore = events.FormatBytes(opts.JSMaxStore)
		}
		return fmt.Errorf("%w; the embedded JetStream may use %s (--jetstream-max-store; by default 75%% of the %s free under %s): free disk space, or lower --status-max-bytes",
			err, maxStore, events.FormatBytes(free), opts.DataDir)
	}
	return err
}
