package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
)

// A single-owner store (SQLite: one file, one process) must be the only
// one on its prefix: two workers with two stores both record the intents
// redelivered after a stall and both run those orders, so an item is
// delivered and its coins refunded (seen: 119 of 600 orders after one 40 s
// SIGSTOP). The owner holds a lease, a key in a JetStream key-value
// bucket whose entries expire ownerTTL after their last write, and renews
// it every ownerTTL/3. A second worker finds the key and refuses to start,
// naming the holder. A worker that cannot renew in time stops taking
// intents and starting steps (its lease may have lapsed and been taken);
// one that finds the lease taken by another stops.
const (
	ownerTTL = 15 * time.Second
	ownerKey = "owner"
)

// ErrPrefixOwned: another worker holds the prefix's lease.
var ErrPrefixOwned = errors.New("another worker owns this prefix")

// ErrOwnershipLost: the lease passed to another worker while this one
// ran (it stalled longer than the lease, or NATS lost the key).
var ErrOwnershipLost = errors.New("this worker lost ownership of its prefix")

// Owner identifies a worker that owns its prefix. A worker on the same
// host and data dir as the recorded holder takes the lease over at once:
// it holds the store's file lock, so the holder is gone.
type Owner struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	DataDir string    `json:"data_dir"`
	Since   time.Time `json:"since"`
}

func (o Owner) String() string {
	return fmt.Sprintf("pid %d on %s (data dir %s, since %s)", o.PID, o.Host, o.DataDir, o.Since.UTC().Format(time.RFC3339))
}

func (o Owner) sameStore(other Owner) bool { return o.Host == other.Host && o.DataDir == other.DataDir }

// ThisProcess is the Owner for this process and dataDir.
func ThisProcess(dataDir string, now time.Time) Owner {
	host, _ := os.Hostname()
	return Owner{Host: host, PID: os.Getpid(), DataDir: dataDir, Since: now}
}

// prefixLease is the lease this worker holds.
type prefixLease struct {
	kv      jetstream.KeyValue
	me      Owner
	value   []byte
	rev     uint64
	ttl     time.Duration
	now     func() time.Time
	renewed atomic.Int64 // UnixNano of the start of the last successful write
}

// acquirePrefix takes the prefix's lease for me, or says who holds it.
func acquirePrefix(ctx context.Context, js jetstream.JetStream, s events.Subjects, me Owner, ttl time.Duration, now func() time.Time) (*prefixLease, error) {
	kv, err := ownerBucket(ctx, js, s, ttl)
	if err != nil {
		return nil, err
	}
	value, _ := json.Marshal(me)
	l := &prefixLease{kv: kv, me: me, value: value, ttl: ttl, now: now}
	for range 3 { // the key may expire or be released between the calls
		started := now()
		rev, err := kv.Create(ctx, ownerKey, value)
		if err == nil {
			l.rev = rev
			l.renewed.Store(started.UnixNano())
			return l, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("take the lease in %s: %w", s.OwnerBucket(), err)
		}
		entry, err := kv.Get(ctx, ownerKey)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read the lease in %s: %w", s.OwnerBucket(), err)
		}
		var holder Owner
		_ = json.Unmarshal(entry.Value(), &holder)
		if holder.sameStore(me) {
			if rev, err = kv.Update(ctx, ownerKey, value, entry.Revision()); err == nil {
				l.rev = rev
				l.renewed.Store(started.UnixNano())
				return l, nil
			}
			continue
		}
		age := max(0, now().Sub(entry.Created())).Round(time.Second)
		return nil, fmt.Errorf("%w: prefix %q is served by %s, lease renewed %s ago; with a SQLite store only one worker may serve a prefix: stop that worker, or give this one another --prefix",
			ErrPrefixOwned, s.Prefix, holder, age)
	}
	return nil, fmt.Errorf("take the lease in %s: it kept changing hands", s.OwnerBucket())
}

func ownerBucket(ctx context.Context, js jetstream.JetStream, s events.Subjects, ttl time.Duration) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, s.OwnerBucket())
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("lease bucket %s: %w", s.OwnerBucket(), err)
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      s.OwnerBucket(),
		Description: "the coinsaga worker that owns this prefix (single-owner stores)",
		TTL:         ttl,
		History:     1,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.KeyValue(ctx, s.OwnerBucket())
	}
	if err != nil {
		return nil, fmt.Errorf("create lease bucket %s: %w", s.OwnerBucket(), err)
	}
	return kv, nil
}

// valid reports whether the lease is surely still ours: its last write
// started less than the TTL ago, less a margin for the server's clock.
func (l *prefixLease) valid() bool {
	return l.now().Sub(time.Unix(0, l.renewed.Load())) < l.ttl-l.ttl/5
}

// renew writes the lease again. It returns ErrOwnershipLost when another
// worker holds it now; other errors (NATS unreachable) are worth retrying.
func (l *prefixLease) renew(ctx context.Context) error {
	started := l.now()
	rev, err := l.kv.Update(ctx, ownerKey, l.value, l.rev)
	if err == nil {
		l.rev = rev
		l.renewed.Store(started.UnixNano())
		return nil
	}
	entry, gerr := l.kv.Get(ctx, ownerKey)
	switch {
	case errors.Is(gerr, jetstream.ErrKeyNotFound):
		// Lapsed (we were away longer than the TTL) and nobody took it.
		rev, err := l.kv.Create(ctx, ownerKey, l.value)
		if err != nil {
			return fmt.Errorf("take the lapsed lease again: %w", err)
		}
		l.rev = rev
		l.renewed.Store(started.UnixNano())
		return nil
	case gerr != nil:
		return fmt.Errorf("renew lease: %w", err)
	}
	var holder Owner
	_ = json.Unmarshal(entry.Value(), &holder)
	if holder != l.me {
		return fmt.Errorf("%w: it is now held by %s", ErrOwnershipLost, holder)
	}
	// Ours, at a revision we missed (a write whose reply was lost).
	if rev, err = l.kv.Update(ctx, ownerKey, l.value, entry.Revision()); err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	l.rev = rev
	l.renewed.Store(started.UnixNano())
	return nil
}

// keep renews the lease until ctx ends, and calls lost (once) if another
// worker took it.
func (l *prefixLease) keep(ctx context.Context, log *slog.Logger, lost func(error)) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		callCtx, cancel := context.WithTimeout(ctx, l.ttl/3)
		err := l.renew(callCtx)
		cancel()
		switch {
		case errors.Is(err, ErrOwnershipLost):
			lost(err)
			return
		case err != nil && !failing:
			failing = true
			log.Warn("cannot renew the prefix lease; taking no new work once it may have lapsed", "err", err)
		case err == nil && failing:
			failing = false
			log.Info("prefix lease renewed again")
		}
	}
}

// release gives the lease up at a graceful stop, so that a successor
// need not wait for it to expire.
func (l *prefixLease) release(ctx context.Context) {
	_ = l.kv.Delete(ctx, ownerKey, jetstream.LastRevision(l.rev))
}
