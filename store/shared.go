package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/coinsaga/coinsaga/internal/orderstate"
)

// Ownership of orders among several workers (issue 15).
//
// An order belongs to the worker that accepted it until it ends or that
// worker dies. A worker holds one heartbeat lease (a row in workers), not
// one per order, so orders waiting in confirmation cost no writes. Every
// step commit is fenced by version, owner and a live lease; orders whose
// owner is gone (rescued, released, or replayed by a tool) have no owner
// and any worker claims them. See docs/architecture.md, "Ownership".

// Lease timings. The database's clock decides whether a lease is live
// (one clock for every worker, whatever their machines' clocks say); the
// worker's local fence uses its own monotonic clock from when it sent the
// renew, which is earlier than when the database stamped it, so the local
// fence always closes before the database's.
const (
	// LeaseTTL is how long a register or renew keeps a worker's lease.
	LeaseTTL = 15 * time.Second
	// LeaseRenewEvery is how often a worker renews: three chances to
	// renew within one TTL, so one slow round trip does not lose it.
	LeaseRenewEvery = 5 * time.Second
	// RescueGrace is how long after its lease expired a worker's orders
	// are left alone before another worker may take them. It must be at
	// least twice the provider timeout (5 s, config.DefaultTimeout), and
	// with LeaseFenceMargin above the step timeout that bounds a step's
	// calls and their retries (10 s, worker.DefaultStepTimeout): a pay or
	// cancel started just before the local fence closed has then surely
	// been answered (or timed out) and its outcome committed or refused
	// before anyone else acts; internal/service's tests check both.
	// Worst case takeover after a crash: LeaseTTL + RescueGrace + one
	// rescue and one claim period, about 27 s (a grace of 15 s put it
	// right at the 30 s issue 15 allows: 29.7 s measured).
	RescueGrace = 10 * time.Second
	// LeaseFenceMargin: the local fence. A worker starts no pay or cancel
	// once LeaseTTL - LeaseFenceMargin has passed since it sent its last
	// successful renew (Lease.MayStart), so that a call never starts on a
	// lease the database may already have let expire.
	LeaseFenceMargin = 2 * time.Second
)

// Errors of the ownership seam. Both also match ErrStale (errors.Is),
// because for a caller that knows nothing of ownership they mean the same:
// nothing was written, the order is not this caller's to move now.
var (
	// ErrNotOwner: the order belongs to another worker (or to none: it was
	// rescued or released); this worker must drop it.
	ErrNotOwner = fmt.Errorf("%w: order is not owned by this worker", ErrStale)
	// ErrLeaseLost: this worker's lease expired or was rescued; it must
	// stop provider calls, drop every order it holds in memory and
	// register anew.
	ErrLeaseLost = fmt.Errorf("%w: this worker's lease is lost", ErrStale)
)

// LeaseTimings are the timings a store handle applies; tests shorten
// them. The zero value means the defaults above.
type LeaseTimings struct {
	TTL   time.Duration // LeaseTTL
	Grace time.Duration // RescueGrace
}

// DefaultLeaseTimings are the production timings.
var DefaultLeaseTimings = LeaseTimings{TTL: LeaseTTL, Grace: RescueGrace}

// OrDefault fills zero fields with the defaults.
func (lt LeaseTimings) OrDefault() LeaseTimings {
	if lt.TTL <= 0 {
		lt.TTL = LeaseTTL
	}
	if lt.Grace <= 0 {
		lt.Grace = RescueGrace
	}
	return lt
}

// Lease is a worker's registration as the store last confirmed it.
type Lease struct {
	Worker    string    `json:"worker"` // random id, fresh at every Register
	Host      string    `json:"host"`
	StartedAt time.Time `json:"started_at"` // the database's clock
	ExpiresAt time.Time `json:"expires_at"` // the database's clock
	// Expired is the database's verdict when the lease was read (Workers).
	Expired bool `json:"expired,omitempty"`
	// Sent is the local clock when the request that set ExpiresAt was
	// sent (with its monotonic reading when the clock is time.Now): the
	// local fence counts from it, never from the database's time.
	Sent time.Time     `json:"-"`
	TTL  time.Duration `json:"-"`
}

// FenceAt is when the local fence closes: from then on the worker starts
// no pay or cancel until a renew succeeds.
func (l Lease) FenceAt() time.Time { return l.Sent.Add(l.TTL - LeaseFenceMargin) }

// MayStart reports whether a pay or cancel may start at now (the same
// clock as Sent).
func (l Lease) MayStart(now time.Time) bool { return l.Worker != "" && now.Before(l.FenceAt()) }

// Rescued reports what one Rescue did.
type Rescued struct {
	Workers []string // the expired workers removed
	Orders  int      // their orders, now without an owner
}

// Shared is a Store that several workers may share, each through its own
// handle. A handle acts for at most one worker at a time: after Register,
// its Accepts make the orders that worker's, its Applies are fenced by
// owner and a live lease, and Due and NextDue return only that worker's
// orders. A handle that never registered behaves as a plain Store (no
// owner fence; its accepts and applies leave orders without an owner, so
// that any worker may claim them: that is how a replay tool hands an
// order back).
type Shared interface {
	Store
	// Register makes the handle act for a new worker with a random id and
	// a fresh lease; a worker whose lease was lost calls it again.
	Register(ctx context.Context, host string) (Lease, error)
	// Renew extends the lease; ErrLeaseLost when it had expired or was
	// rescued (no row back: nothing is extended).
	Renew(ctx context.Context) (Lease, error)
	// Release ends the worker gracefully: its orders and unpublished
	// outbox rows lose their owner at once (versions bumped, so in-memory
	// copies go stale) and its lease row goes. It returns how many orders
	// it handed over. Later writes of the handle fail with ErrLeaseLost
	// until it registers again.
	Release(ctx context.Context) (int, error)
	// Rescue removes workers whose lease expired more than the grace
	// period ago and takes the owner off their orders and outbox rows.
	// Any worker may run it at any time; it is idempotent.
	Rescue(ctx context.Context) (Rescued, error)
	// Claim takes up to limit due orders that have no owner (orphans,
	// replays) at one of steps (any when empty), soonest first, makes them
	// this worker's (version bumped) and returns them as stored. Rows
	// another worker is claiming at that moment are skipped, so no order
	// is claimed twice.
	Claim(ctx context.Context, now time.Time, limit int, steps []orderstate.Step) ([]Order, error)
	// RelayOutbox claims up to limit outbox rows (this worker's and those
	// without an owner) oldest first, hands them to publish and deletes
	// the ids publish reports acknowledged, all while holding the claim,
	// so that no other relay publishes them meanwhile. It returns how many
	// it deleted; publish's error is returned after the acked are deleted.
	// A handle without a worker (never registered, or released) relays
	// the rows without an owner.
	RelayOutbox(ctx context.Context, limit int, publish func(ctx context.Context, msgs []Message) (acked []int64, err error)) (int, error)
	// Owner returns the worker that owns an order ("" for none);
	// ErrNotFound when there is no such order.
	Owner(ctx context.Context, outOrderID string) (string, error)
	// Workers lists the registered workers with the database's verdict on
	// their leases.
	Workers(ctx context.Context) ([]Lease, error)
}

// NewWorkerID returns a random worker id: 16 bytes of crypto/rand, so a
// restarted process never reuses its predecessor's lease.
func NewWorkerID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("worker id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
