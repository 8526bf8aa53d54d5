package postgres

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/jmoiron/sqlx"
)

// IsURL reports whether s names a PostgreSQL database (postgres:// or
// postgresql://), the form `serve --database-url` selects this store by.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Redact is s with its password replaced, for logs and error messages.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	return u.Redacted()
}

// SchemaExists reports whether the database at url already holds
// coinsaga's schema, without changing anything. A new store is checked
// against NATS for an earlier store's work before Open creates the
// schema: a wiped or wrong database must not look like a fresh start.
func SchemaExists(ctx context.Context, url string) (bool, error) {
	db, err := sqlx.Open("pgx", url)
	if err != nil {
		return false, fmt.Errorf("postgres %s: %w", Redact(url), err)
	}
	defer db.Close()
	var name *string
	if err := db.GetContext(ctx, &name, `SELECT to_regclass('schema_migrations')::text`); err != nil {
		return false, fmt.Errorf("postgres %s: %w", Redact(url), err)
	}
	return name != nil, nil
}
