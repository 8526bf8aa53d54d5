package worker

import (
	"fmt"
	"testing"

	"github.com/coinsaga/coinsaga/events"
)

func TestDecodedIntents(t *testing.T) {
	t.Run("an intent is handed over once, to the order it was decoded for", func(t *testing.T) {
		var d decodedIntents
		d.put("o-1", "h1", events.Intent{OutOrderID: "o-1"})
		if in, ok := d.take("o-1", "h1"); !ok || in.OutOrderID != "o-1" {
			t.Fatalf("take = %+v, %v; want the intent", in, ok)
		}
		if _, ok := d.take("o-1", "h1"); ok {
			t.Error("a second take found the intent again")
		}
	})

	t.Run("an intent decoded from another body is not used", func(t *testing.T) {
		var d decodedIntents
		d.put("o-1", "h1", events.Intent{OutOrderID: "o-1"})
		if _, ok := d.take("o-1", "h2"); ok {
			t.Error("take with another body hash returned the cached intent")
		}
		if _, ok := d.take("o-1", "h1"); ok {
			t.Error("the mismatched entry stayed behind")
		}
	})

	t.Run("a full cache keeps what it has and takes nothing more", func(t *testing.T) {
		var d decodedIntents
		for i := range maxDecodedIntents + 10 {
			d.put(fmt.Sprint("o-", i), "h", events.Intent{})
		}
		if len(d.m) != maxDecodedIntents {
			t.Errorf("cache holds %d intents, want the bound %d", len(d.m), maxDecodedIntents)
		}
		if _, ok := d.take(fmt.Sprint("o-", maxDecodedIntents+5), "h"); ok {
			t.Error("an intent put after the cache filled was kept")
		}
	})
}
