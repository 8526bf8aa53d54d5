package postgres_test

import (
	"fmt"
	"testing"

	"github.com/coinsaga/coinsaga/internal/pgtest"
	"github.com/coinsaga/coinsaga/store/storetest"
)

// Run with: go test -run '^$' -bench . ./store/postgres/
//
// The throwaway server runs with fsync and synchronous_commit off, so
// these figures leave out the commit's flush that a production server
// (synchronous_commit = on) adds to every transaction; group commit
// shares that flush between the writes of a batch.
func BenchmarkAcceptApply(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("%d callers", callers), func(b *testing.B) {
			s := open(b, pgtest.DB(b))
			defer s.Close()
			c0, w0 := s.CommitCounts()
			storetest.BenchAcceptApply(b, s, callers)
			if commits, writes := s.CommitCounts(); commits > c0 {
				b.ReportMetric(float64(writes-w0)/float64(commits-c0), "writes/commit")
			}
		})
	}
}
