package pgtest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestWithoutPostgreSQLTestsSkipAndFailUnderCI runs itself again as a
// child whose PostgreSQL is missing: there DB must skip, naming the
// package to install, or fail when CI=true.
func TestWithoutPostgreSQLTestsSkipAndFailUnderCI(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		binDir = t.TempDir() // holds no postgres
		DB(t)
		t.Fatal("DB returned a database without PostgreSQL")
	}
	t.Parallel()
	tests := []struct {
		name     string
		ci       string
		wantFail bool
		want     []string
	}{
		{"outside CI the test skips with one line naming the package", "", false,
			[]string{"--- SKIP", "apt-get install postgresql-15", EnvURL}},
		{"under CI the test fails", "true", true,
			[]string{"--- FAIL", "CI=true", "postgresql-15"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run", "^TestWithoutPostgreSQLTestsSkipAndFailUnderCI$", "-test.v")
			var env []string
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, EnvURL+"=") && !strings.HasPrefix(kv, "CI=") {
					env = append(env, kv)
				}
			}
			cmd.Env = append(env, "PGTEST_CHILD=1", "CI="+tc.ci)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tc.wantFail {
				t.Errorf("child failed = %v (%v), want %v; output:\n%s", failed, err, tc.wantFail, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("child output does not say %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestAServerNamedInTheEnvironmentIsUsedInsteadOfOurOwn runs the package's
// database test again as a child with EnvURL set to this binary's server:
// the child must pass on it without starting a server of its own.
func TestAServerNamedInTheEnvironmentIsUsedInsteadOfOurOwn(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		t.Skip("only the parent runs this")
	}
	t.Parallel()
	url := DB(t)
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run", "^TestEachTestGetsItsOwnEmptyDatabase$", "-test.v")
	cmd.Env = append(os.Environ(), EnvURL+"="+url, "PGTEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestEachTestGetsItsOwnEmptyDatabase") {
		t.Fatalf("child on %s: %v\n%s", url, err, out)
	}
	// Our own server's databases are named tN; the child's say they were
	// made on a server it was given.
	if !strings.Contains(string(out), "/coinsaga_test_") {
		t.Errorf("the child did not use the server it was given:\n%s", out)
	}
	// The child's databases were made on our server and dropped again.
	var left int
	if err := srv.admin.QueryRowContext(t.Context(),
		"SELECT COUNT(*) FROM pg_database WHERE datname LIKE 'coinsaga_test_%'").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d databases of the child are left on the server", left)
	}
}
