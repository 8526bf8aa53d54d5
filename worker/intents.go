package worker

import (
	"sync"

	"github.com/coinsaga/coinsaga/events"
)

// maxDecodedIntents bounds the intents kept decoded between accept and
// first step: a few thousand orders' worth (about 1 KiB each), enough for a
// full consumer batch and the orders waiting for a step slot behind it.
const maxDecodedIntents = 4096

// decodedIntents hands the intent the consumer decoded and validated to
// the order's first step, which would otherwise decode the stored copy
// again (about 20 µs and 40 allocations per order). It is only a shortcut:
// an order whose intent is not here (the cache was full, the worker
// restarted, a later step) decodes the stored bytes, which are the truth.
type decodedIntents struct {
	mu sync.Mutex
	m  map[string]decodedIntent
}

type decodedIntent struct {
	bodyHash string
	intent   events.Intent
}

// put keeps in for the order outOrderID with body hash bodyHash, unless
// the cache is full.
func (d *decodedIntents) put(outOrderID, bodyHash string, in events.Intent) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = make(map[string]decodedIntent)
	}
	if len(d.m) < maxDecodedIntents {
		d.m[outOrderID] = decodedIntent{bodyHash: bodyHash, intent: in}
	}
}

// take removes and returns the intent kept for outOrderID if it was
// decoded from the body with bodyHash.
func (d *decodedIntents) take(outOrderID, bodyHash string) (events.Intent, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.m[outOrderID]
	if !ok {
		return events.Intent{}, false
	}
	delete(d.m, outOrderID)
	return e.intent, e.bodyHash == bodyHash
}
