package worker

import (
	"context"
	"sync"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
)

// readings shares confirmation balance reads among the waiting orders of
// one account.
//
// A confirmation poll asks one question: does the balance, read now, show
// this order's debit? A player who bought five things in a row has five
// orders waiting, and five polls every interval would read the same
// account five times. A read is a read, whichever order made it: a poll
// may use a reading another order took, if that reading is newer than
// everything the poll's order has already seen and younger than one
// interval. The order then schedules its next poll one interval after
// that reading, which lines it up with the other orders of the account, so
// that from then on their polls fall due together and share one read (an
// order that finds a read under way waits for it).
//
// Only confirmation polls share. The balance baseline is always read by
// its own order: it must be taken before that order's pay. Nothing here
// needs to survive a restart; losing it costs one read per account.
type readings struct {
	maxAge time.Duration // a reading older than this serves nobody

	mu        sync.Mutex
	byAccount map[readingKey]*reading
	lastSweep time.Time
}

// readingKey is one coin account: the wallet and the player, plus the
// Midas zone and account type, which hold separate balances.
type readingKey struct {
	provider, openID, zone, accountType string
}

func keyOf(provider string, a providers.Account) readingKey {
	k := readingKey{provider: provider, openID: a.OpenID}
	if provider == events.ProviderMidas {
		k.zone, k.accountType = a.Midas.ZoneID, a.Midas.AccountType
	}
	return k
}

// reading is one balance read, under way until done is closed.
type reading struct {
	at   time.Time // when the request was sent
	done chan struct{}
	bal  providers.Balance // set before done is closed
	err  error
}

// balanceReading is what a poll learned: the balance, when it was read,
// and whether another order's poll made the read.
type balanceReading struct {
	providers.Balance
	at     time.Time
	shared bool
}

func newReadings(maxAge time.Duration) *readings {
	return &readings{maxAge: maxAge, byAccount: map[readingKey]*reading{}}
}

// get returns a reading of key's balance sent no earlier than since and
// younger than maxAge at now, joining a read under way if there is one;
// otherwise it reads with read, at now, and offers the result to the
// account's other polls. A failed read is never shared: a poll that finds
// one reads for itself.
func (rs *readings) get(ctx context.Context, key readingKey, since, now time.Time,
	read func(context.Context) (providers.Balance, error)) (balanceReading, error) {
	rs.mu.Lock()
	rs.sweep(now)
	if r := rs.byAccount[key]; r != nil && !r.at.Before(since) && now.Sub(r.at) < rs.maxAge {
		rs.mu.Unlock()
		select {
		case <-r.done:
		case <-ctx.Done():
			return balanceReading{at: now}, ctx.Err()
		}
		if r.err == nil {
			return balanceReading{Balance: r.bal, at: r.at, shared: true}, nil
		}
		rs.mu.Lock()
	}
	r := &reading{at: now, done: make(chan struct{})}
	rs.byAccount[key] = r
	rs.mu.Unlock()

	r.bal, r.err = read(ctx)
	close(r.done)
	if r.err != nil {
		rs.mu.Lock()
		if rs.byAccount[key] == r {
			delete(rs.byAccount, key)
		}
		rs.mu.Unlock()
	}
	return balanceReading{Balance: r.bal, at: r.at}, r.err
}

// sweep drops, once per maxAge, the readings too old to serve anyone, so
// that the map holds only the accounts polled in the last interval.
// Callers hold rs.mu.
func (rs *readings) sweep(now time.Time) {
	if now.Sub(rs.lastSweep) < rs.maxAge {
		return
	}
	rs.lastSweep = now
	for k, r := range rs.byAccount {
		if now.Sub(r.at) >= rs.maxAge {
			select {
			case <-r.done:
				delete(rs.byAccount, k)
			default: // still under way: its reader removes or renews it
			}
		}
	}
}
