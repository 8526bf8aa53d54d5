package worker

import (
	"context"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/store"
)

// pruneStore is a store whose PruneTerminal answers from a script and
// notes the cutoffs it was asked for; nothing else of it is used.
type pruneStore struct {
	store.Store
	deleted []int // what each call deletes
	cutoffs []time.Time
}

func (s *pruneStore) PruneTerminal(_ context.Context, cutoff time.Time, limit int) (int, error) {
	s.cutoffs = append(s.cutoffs, cutoff)
	if len(s.deleted) == 0 {
		return 0, nil
	}
	n := min(s.deleted[0], limit)
	s.deleted = s.deleted[1:]
	return n, nil
}

func TestRetentionDeletesInBatchesUntilLessIsLeft(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		deleted   []int
		wantCalls int
	}{
		{"nothing to delete is one call", nil, 1},
		{"a part batch is the last call", []int{pruneBatch, pruneBatch, 10}, 3},
		{"a full batch is followed by another call", []int{pruneBatch}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st := &pruneStore{deleted: c.deleted}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // one round, then the loop sees it is done
			PruneLoop(ctx, st, 72*time.Hour, func() time.Time { return now }, nil)
			if len(st.cutoffs) != c.wantCalls {
				t.Fatalf("%d deletes, want %d", len(st.cutoffs), c.wantCalls)
			}
			for _, cut := range st.cutoffs {
				if want := now.Add(-72 * time.Hour); !cut.Equal(want) {
					t.Errorf("cutoff %s, want %s: keep is measured on the clock given", cut, want)
				}
			}
		})
	}
}
