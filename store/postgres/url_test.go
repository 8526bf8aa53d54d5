package postgres_test

import (
	"context"
	"testing"

	"github.com/coinsaga/coinsaga/internal/pgtest"
	"github.com/coinsaga/coinsaga/store/postgres"
)

func TestURLHelpers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in     string
		isURL  bool
		redact string
	}{
		{"postgres://coinsaga:s3cret@db:5432/coinsaga", true, "postgres://coinsaga:xxxxx@db:5432/coinsaga"},
		{"postgresql://db/coinsaga?sslmode=require", true, "postgresql://db/coinsaga?sslmode=require"},
		{"./data/coinsaga.db", false, "./data/coinsaga.db"},
	} {
		t.Run(tc.in+" is recognised and shown without its password", func(t *testing.T) {
			if got := postgres.IsURL(tc.in); got != tc.isURL {
				t.Errorf("IsURL = %v, want %v", got, tc.isURL)
			}
			if got := postgres.Redact(tc.in); got != tc.redact {
				t.Errorf("Redact = %q, want %q", got, tc.redact)
			}
		})
	}
}

func TestSchemaExistsOnlyOnceTheStoreWasOpened(t *testing.T) {
	t.Parallel()
	url := pgtest.DB(t)
	ctx := context.Background()
	if ok, err := postgres.SchemaExists(ctx, url); err != nil || ok {
		t.Fatalf("before Open: SchemaExists = %v, %v; want false, nil", ok, err)
	}
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if ok, err := postgres.SchemaExists(ctx, url); err != nil || !ok {
		t.Fatalf("after Open: SchemaExists = %v, %v; want true, nil", ok, err)
	}
}
