package providertest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/coinsaga/coinsaga/providers/sandbox"
)

// Serve serves a sandbox with seed 1 for its fault dice (tune may change
// its configuration) over HTTP on loopback until the test ends, and
// returns it with its base URL.
func Serve(t testing.TB, tune ...func(*sandbox.Config)) (*sandbox.Sandbox, string) {
	t.Helper()
	cfg := sandbox.Config{Seed: 1}
	for _, f := range tune {
		f(&cfg)
	}
	sb := sandbox.New(cfg)
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	return sb, srv.URL
}

// Hanging serves a provider that never answers (until the test ends, or
// the client gives up) and returns its URL, for timeout tests.
func Hanging(t testing.TB) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv.URL
}
