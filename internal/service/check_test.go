package service

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/cli"
	"github.com/coinsaga/coinsaga/worker"
)

// runnable are options serve can run with: the flags' defaults.
func runnable() Options {
	return Options{
		NotifyPath: "/sud/notify",
		Worker: worker.Config{
			Streams:     events.StreamOptions{Replicas: 1, StatusMaxAge: events.DefaultStatusMaxAge, StatusMaxBytes: events.DefaultStatusMaxBytes},
			Concurrency: worker.DefaultConcurrency, MaxSteps: worker.DefaultMaxSteps,
			ConfirmInterval: worker.DefaultConfirmInterval, ConfirmTimeout: worker.DefaultConfirmTimeout,
			SUDExecuteTimeout: worker.DefaultSUDExecuteTimeout, OutageHold: worker.DefaultOutageHold,
			Retry: worker.RetryPolicy{MaxAttempts: worker.DefaultMaxAttempts},
		},
	}
}

func TestCheckRefusesTheValuesServeCannotRunWith(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(*Options)
		src   cli.Sources
		wants []string // the lines of the error, in order; none: no error
	}{
		{name: "the defaults pass", edit: func(*Options) {}},
		{name: "no retention and no notify path pass", edit: func(o *Options) { o.Retention, o.NotifyPath = 0, "" }},
		{name: "a PostgreSQL URL passes", edit: func(o *Options) { o.DatabaseURL = "postgres://u:p@db/coinsaga" }},
		{name: "fewer steps at most than at least is refused", edit: func(o *Options) { o.Worker.MaxSteps = 8; o.Worker.Concurrency = 16 },
			wants: []string{"--max-steps 8: want at least --concurrency"}},
		{name: "a database URL that is not PostgreSQL is refused with its password hidden", edit: func(o *Options) { o.DatabaseURL = "mysql://u:secret@h/db" },
			wants: []string{"--database-url mysql://u:xxxxx@h/db: want a postgres:// URL, or leave it unset for SQLite under --data-dir"}},
		{name: "a value from the environment is named with its variable", edit: func(o *Options) { o.Worker.ConfirmInterval = 0 },
			src:   cli.Sources{"confirm-interval": "COINSAGA_CONFIRM_INTERVAL"},
			wants: []string{"--confirm-interval 0s (from COINSAGA_CONFIRM_INTERVAL): want a positive duration like 15s or 2m"}},
		{name: "every bad value is a line of its own, in the flags' order", edit: func(o *Options) {
			o.Worker.Concurrency, o.Worker.Retry.MaxAttempts, o.Worker.Streams.Replicas = 0, 0, 0
			o.Worker.Streams.StatusMaxBytes, o.Retention, o.NotifyPath = 0, -1, "notify"
		}, wants: []string{
			"--concurrency 0: want 1 or more steps at once",
			"--max-attempts 0: want 1 or more calls per step",
			"--stream-replicas 0: want 1 or more (3 on a NATS cluster)",
			"--retention -1ns: want a duration like 720h, or 0 to keep every order",
			"--status-max-bytes 0: want a size like 256MiB",
			`--sud-notify-path "notify": want a path starting with "/", or "" for none`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := runnable()
			tc.edit(&o)
			err := o.Check(tc.src)
			if len(tc.wants) == 0 {
				if err != nil {
					t.Errorf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, cli.ErrUsage) {
				t.Fatalf("Check = %v, want a usage error", err)
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tc.wants, "\n") {
				t.Errorf("Check said\n%s\nwant\n%s", err, strings.Join(tc.wants, "\n"))
			}
		})
	}
}

func TestAStreamThatDoesNotFitTheEmbeddedJetStreamSaysWhatToChange(t *testing.T) {
	t.Parallel()
	full := fmt.Errorf("create stream COINSAGA_STATUS: %w: it reserves 64 TiB", events.ErrStreamStorage)
	dir := t.TempDir()
	t.Run("the embedded server's limit and the free disk are named", func(t *testing.T) {
		t.Parallel()
		err := explain(full, Options{DataDir: dir, JSMaxStore: 1 << 30})
		if !errors.Is(err, events.ErrStreamStorage) {
			t.Fatalf("explain = %v, want it to wrap ErrStreamStorage", err)
		}
		for _, want := range []string{"may use 1 GiB (--jetstream-max-store;", "free under " + dir, "lower --status-max-bytes"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q does not say %q", err, want)
			}
		}
	})
	t.Run("without a limit the default share of the disk is named", func(t *testing.T) {
		t.Parallel()
		if err := explain(full, Options{DataDir: dir}); !strings.Contains(err.Error(), "may use 75% of the free disk (") {
			t.Errorf("%q", err)
		}
	})
	t.Run("an external NATS's storage is not the embedded server's to explain", func(t *testing.T) {
		t.Parallel()
		if err := explain(full, Options{NATSURL: "nats://nats.internal:4222", DataDir: dir}); err != full {
			t.Errorf("explain = %v, want the error as it was", err)
		}
	})
	t.Run("any other error is left as it is", func(t *testing.T) {
		t.Parallel()
		other := errors.New("boom")
		if err := explain(other, Options{DataDir: dir}); err != other {
			t.Errorf("explain = %v", err)
		}
	})
}
