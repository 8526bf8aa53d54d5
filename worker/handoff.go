package worker

import (
	"sync"
	"time"

	"github.com/coinsaga/coinsaga/store"
)

// maxHandoff bounds the new orders waiting in memory for the scheduler;
// past it the scheduler finds them in the store, as it finds all others.
const maxHandoff = 1024

// handoff carries the orders the consumer just created to the scheduler,
// so that a new order starts without a store read. Without it, every
// accept batch (hundreds a second at a moderate rate) made the scheduler
// page through the due index, where the running orders sit first, to find
// the few orders it had just been told about. The store stays the truth:
// when the handoff is full, or for replays, the consumer marks the store
// as holding new work and the scheduler reads it.
type handoff struct {
	mu      sync.Mutex
	orders  []freshOrder
	inStore bool // due work the handoff does not hold: read the store
}

// freshOrder is an order as just created, with the time it was known
// current (see Worker.current).
type freshOrder struct {
	order store.Order
	at    time.Time
	epoch epoch // the lease it was accepted under (shared.go)
}

// put hands o over, or marks the store when the handoff is full.
func (h *handoff) put(o store.Order, at time.Time) { h.putAt(o, at, 0) }

// putAt is put for an order accepted under the lease epoch e.
func (h *handoff) putAt(o store.Order, at time.Time, e epoch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.orders) >= maxHandoff {
		h.inStore = true
		return
	}
	h.orders = append(h.orders, freshOrder{order: o, at: at, epoch: e})
}

// markStore says that the store holds due work the handoff does not.
func (h *handoff) markStore() {
	h.mu.Lock()
	h.inStore = true
	h.mu.Unlock()
}

// take returns the orders handed over since the last take and whether the
// store must be read too.
func (h *handoff) take() ([]freshOrder, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	orders, inStore := h.orders, h.inStore
	h.orders, h.inStore = nil, false
	return orders, inStore
}
