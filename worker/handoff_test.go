package worker

import (
	"fmt"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/store"
)

func TestHandoff(t *testing.T) {
	t.Run("new orders are taken once, in the order they were handed over", func(t *testing.T) {
		var h handoff
		at := time.Now()
		h.put(store.Order{OutOrderID: "o-1"}, at)
		h.put(store.Order{OutOrderID: "o-2"}, at)
		got, inStore := h.take()
		if len(got) != 2 || got[0].order.OutOrderID != "o-1" || got[1].order.OutOrderID != "o-2" || !got[0].at.Equal(at) {
			t.Fatalf("take = %+v, want o-1 then o-2", got)
		}
		if inStore {
			t.Error("take says the store holds more, but everything was handed over")
		}
		if again, _ := h.take(); len(again) != 0 {
			t.Errorf("second take = %+v, want nothing", again)
		}
	})

	t.Run("a full handoff sends the scheduler to the store", func(t *testing.T) {
		var h handoff
		for i := range maxHandoff + 1 {
			h.put(store.Order{OutOrderID: fmt.Sprint("o-", i)}, time.Now())
		}
		got, inStore := h.take()
		if len(got) != maxHandoff || !inStore {
			t.Errorf("take = %d orders, inStore %v; want %d and true", len(got), inStore, maxHandoff)
		}
		if _, inStore := h.take(); inStore {
			t.Error("the store mark outlived the take that reported it")
		}
	})

	t.Run("a replay marks the store without handing anything over", func(t *testing.T) {
		var h handoff
		h.markStore()
		if got, inStore := h.take(); len(got) != 0 || !inStore {
			t.Errorf("take = %+v, %v; want nothing and true", got, inStore)
		}
	})
}
