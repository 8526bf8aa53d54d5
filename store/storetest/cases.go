package storetest

import (
	"testing"

	"github.com/coinsaga/coinsaga/store"
)

// testCase is one case of a suite: its name says, as a sentence, what it
// checks; run is the case, whose arguments differ from suite to suite.
type testCase[F any] struct {
	name string
	run  F
}

// runParallel runs every case as a parallel subtest; start gives a case
// what it runs on (a fresh store, a pair of handles) and runs it.
func runParallel[F any](t *testing.T, cases []testCase[F], start func(t *testing.T, run F)) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start(t, tc.run)
		})
	}
}

// closePair closes two handles on one database when the test ends; b is
// a itself for a store that admits one handle per database.
func closePair(t *testing.T, a, b store.Store) {
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if b != a {
			if err := b.Close(); err != nil {
				t.Errorf("close second handle: %v", err)
			}
		}
	})
}
