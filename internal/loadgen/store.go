package loadgen

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"syscall"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/progress"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/worker"
)

// preload writes n completed orders straight into the store, in big
// batches, so a run can measure how a large store slows the saga.
func (r *run) preload(ctx context.Context, n int) error {
	if r.t.Store == nil {
		return fmt.Errorf("preload: no store to write to")
	}
	r.logf("preloading %d completed orders into the store", n)
	gen := r.gen("p" + r.cfg.Run)
	bar := progress.New(r.cfg.Log, n, "preload")
	defer bar.Done()
	const batch = 2000
	now := time.Now().Add(-time.Hour) // already old: a --retention run may prune them
	reqs := make([]store.Accept, 0, batch)
	for i := 0; i < n; i++ {
		m := gen.msg(i)
		in, err := events.DecodeIntent(m.Data)
		if err != nil {
			return fmt.Errorf("preload: %w", err)
		}
		reqs = append(reqs, store.Accept{
			Order: store.Order{
				OutOrderID: in.OutOrderID, MgID: in.MgID, RoomID: in.RoomID, FromUID: in.FromUID,
				Provider: in.Payment.Provider, Amount: in.Payment.Amount, Intent: m.Data, IntentSubject: m.Subject,
				BodyHash: in.Hash(), State: events.StateCompleted, Step: worker.StepDone, Seq: 4,
				SudOrderID: "sud-" + in.OutOrderID, BillNo: in.OutOrderID, HasBaseline: true, BaselineBalance: 1000000,
				HasPayBalance: true, PayBalance: 1000000 - in.Payment.Amount, DebitedAt: now, CreatedAt: now, UpdatedAt: now,
			},
			History: store.HistoryEntry{At: now, State: events.StateCompleted, Step: worker.StepConfirm, Attempt: 1,
				Detail: "debit confirmed, balance 999900"},
		})
		if len(reqs) == batch || i == n-1 {
			if _, err := r.t.Store.Accept(ctx, reqs); err != nil {
				return fmt.Errorf("preload: %w", err)
			}
			bar.Add(len(reqs))
			reqs = reqs[:0]
		}
	}
	return nil
}

// dbUsedBytes is the size of the pages the database uses, as a reader
// sees the last commit: WAL content included, free pages (a deleted outbox
// leaves some) excluded. It opens its own read-only connection; the store
// keeps writing meanwhile. (The store package registers the driver.)
func dbUsedBytes(ctx context.Context, path string) (int64, error) {
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
	if err != nil {
		return 0, fmt.Errorf("store size: %w", err)
	}
	defer db.Close()
	var pages, free, size int64
	for q, into := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA freelist_count": &free, "PRAGMA page_size": &size} {
		if err := db.QueryRowContext(ctx, q).Scan(into); err != nil {
			return 0, fmt.Errorf("store size: %s: %w", q, err)
		}
	}
	return (pages - free) * size, nil
}

// maxRSSMB is the peak resident set of this process in MiB (Linux reports
// ru_maxrss in KiB).
func maxRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return round3(float64(ru.Maxrss) / 1024)
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
