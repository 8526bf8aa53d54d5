package deadletter

import (
	"context"
	"time"

	"github.com/coinsaga/coinsaga/events"
)

// Option tunes List, Count, Get, Replay or Purge; each says which calls
// it applies to, and the others ignore it.
type Option func(*options)

type options struct {
	bodies       bool
	after        uint64
	missing      func(seq uint64)
	dryRun       bool
	progress     func(Progress)
	states       StateFunc
	orderTimeout time.Duration
	all          bool
}

// DefaultOrderTimeout bounds the wait for a worker to report an order's
// state before Replay goes on without it.
const DefaultOrderTimeout = 2 * time.Second

func newOptions(opts []Option) options {
	o := options{orderTimeout: DefaultOrderTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Bodies makes List fill each Letter's masked Body (and Raw). Without
// it only headers travel, which keeps listing thousands cheap.
func Bodies() Option { return func(o *options) { o.bodies = true } }

// After makes List and Count start past the dead letter seq: the cursor
// of the next page is the last Seq of the previous one.
func After(seq uint64) Option { return func(o *options) { o.after = seq } }

// OnMissing is called for each of a filter's Seqs that names no dead
// letter (already replayed or purged); List, Count, Replay and Purge go
// on without it.
func OnMissing(f func(seq uint64)) Option { return func(o *options) { o.missing = f } }

// DryRun makes Replay and Purge decide what they would do for each letter
// and report it, changing nothing.
func DryRun() Option { return func(o *options) { o.dryRun = true } }

// OnProgress is called by Replay and Purge from the calling goroutine:
// once with Done 0 when the letters are selected, so that a caller can
// size a progress bar, then after each letter, in order.
func OnProgress(f func(Progress)) Option { return func(o *options) { o.progress = f } }

// StateFunc tells an order's state: "" and no error when it is unknown
// (no worker has the order), an error when it cannot be asked at all.
type StateFunc func(ctx context.Context, outOrderID string) (events.State, error)

// OrderStates replaces how Replay learns an order's state; by default it
// asks the running workers over the order API (worker.GetOrder).
func OrderStates(f StateFunc) Option { return func(o *options) { o.states = f } }

// OrderTimeout bounds each question Replay asks the workers about an
// order's state (default DefaultOrderTimeout); no answer in time and
// Replay goes on without asking again.
func OrderTimeout(d time.Duration) Option { return func(o *options) { o.orderTimeout = d } }

// All lets Purge take a filter that selects every dead letter.
func All() Option { return func(o *options) { o.all = true } }

// Progress is one letter done by Replay or Purge, Result, and how many
// are done of how many selected. Result is zero when Done is 0.
type Progress struct {
	Done, Total int
	Result      Result
}

func (o options) started(total int) {
	if o.progress != nil {
		o.progress(Progress{Total: total})
	}
}
