package postgres

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/coinsaga/coinsaga/store"
)

// SubmitFailing submits, beside nothing else, a write whose statement
// PostgreSQL refuses, for the test that a bad request fails alone.
func SubmitFailing(ctx context.Context, s *Store) error {
	return s.submit(ctx, []op{{key: "zz-bad", run: func(ctx context.Context, tx *sqlx.Tx, _ time.Time) ([]store.Message, error) {
		_, err := tx.ExecContext(ctx, "SELECT 1/0")
		return nil, err
	}}})
}

var Retryable = retryable

// ClaimCandidates is the query of the orders Claim may take, for the test
// that it reads its index.
const ClaimCandidates = claimCandidates
