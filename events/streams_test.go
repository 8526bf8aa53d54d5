package events

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestEnsureStreamsLeavesExistingStreamsAsTheyAre(t *testing.T) {
	ctx, js := startJetStream(t) // creates the default prefix's streams

	t.Run("an operator's longer age limit and larger size survive a restart", func(t *testing.T) {
		st, err := js.Stream(ctx, "COINSAGA_STATUS")
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		cfg.MaxAge, cfg.MaxBytes = 72*time.Hour, 2<<30
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		diffs, err := EnsureStreams(ctx, js, Subjects{}, StreamOptions{Storage: jetstream.MemoryStorage})
		if err != nil {
			t.Fatal(err)
		}
		st, err = js.Stream(ctx, "COINSAGA_STATUS")
		if err != nil {
			t.Fatal(err)
		}
		if got := st.CachedInfo().Config; got.MaxAge != 72*time.Hour || got.MaxBytes != 2<<30 {
			t.Fatalf("EnsureStreams rewrote the operator's limits: max age %s, max bytes %d", got.MaxAge, got.MaxBytes)
		}
		fields := map[string]StreamDifference{}
		for _, d := range diffs {
			if d.Stream == "COINSAGA_STATUS" {
				fields[d.Field] = d
			}
		}
		if d := fields["max age"]; d.Have != "72h0m0s" || d.Want != "24h0m0s" {
			t.Errorf("max age difference: %+v (all: %v)", d, diffs)
		}
		if d := fields["max bytes"]; d.Have != "2 GiB" || d.Want != "1 GiB" {
			t.Errorf("max bytes difference: %+v (all: %v)", d, diffs)
		}
	})

	t.Run("streams that match report no difference", func(t *testing.T) {
		diffs, err := EnsureStreams(ctx, js, Subjects{Prefix: "fresh"}, StreamOptions{Storage: jetstream.MemoryStorage})
		if err != nil {
			t.Fatal(err)
		}
		if diffs, err = EnsureStreams(ctx, js, Subjects{Prefix: "fresh"}, StreamOptions{Storage: jetstream.MemoryStorage}); err != nil || len(diffs) != 0 {
			t.Fatalf("second run: %v, %v", diffs, err)
		}
	})

	for _, prefix := range []string{"tenant_a", "TENANT.A", "Tenant_A"} {
		t.Run("prefix "+prefix+" is refused beside tenant.a, whose stream names it shares", func(t *testing.T) {
			if _, err := EnsureStreams(ctx, js, Subjects{Prefix: "tenant.a"}, StreamOptions{Storage: jetstream.MemoryStorage}); err != nil {
				t.Fatal(err)
			}
			_, err := EnsureStreams(ctx, js, Subjects{Prefix: prefix}, StreamOptions{Storage: jetstream.MemoryStorage})
			if !errors.Is(err, ErrStreamCollision) {
				t.Fatalf("got %v, want ErrStreamCollision", err)
			}
			st, err := js.Stream(ctx, "TENANT_A_INTENTS")
			if err != nil {
				t.Fatal(err)
			}
			if got := st.CachedInfo().Config.Subjects; !slices.Equal(got, []string{"tenant.a.intents.>"}) {
				t.Fatalf("the first deployment's stream now serves %v", got)
			}
		})
	}
}

func TestCompareStreamNeverAsksToLowerReplicas(t *testing.T) {
	want := StreamConfigs(Subjects{}, StreamOptions{})[0]
	have := want
	have.Replicas = 3
	diffs := compareStream(have, want)
	if len(diffs) != 1 || diffs[0].Field != "replicas" || diffs[0].Have != "3" || diffs[0].Want != "1" {
		t.Fatalf("got %v", diffs)
	}
	if s := diffs[0].String(); s != "stream COINSAGA_INTENTS: replicas is 3, coinsaga would create 1; left as it is" {
		t.Fatalf("got %q", s)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 1 << 30: "1 GiB", 1<<30 + 1<<29: "1.5 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
