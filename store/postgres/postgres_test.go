package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/internal/pgtest"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/store/postgres"
	"github.com/coinsaga/coinsaga/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t testing.TB, url string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return s
}

func TestPostgresConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, pgtest.DB(t)) })
}

func TestPostgresWithMaxBatchOneConforms(t *testing.T) {
	// Batching must not change any outcome; a batch of one is the baseline.
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, pgtest.DB(t), postgres.WithMaxBatch(1), postgres.WithCommitters(1))
	})
}

func TestPostgresSharedDatabase(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		url := pgtest.DB(t)
		return open(t, url), open(t, url)
	})
}

func sqlNow() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }
