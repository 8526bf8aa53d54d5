package sandbox

import (
	"testing"
	"time"
)

func TestLatencyJitterDice(t *testing.T) {
	t.Parallel()

	t.Run("the latency of each call is uniform over latency_ms to latency_ms plus latency_jitter_ms", func(t *testing.T) {
		t.Parallel()
		const n = 4000
		f := Fault{Endpoint: epMOGSPay, LatencyMS: 50, LatencyJitterMS: 100}
		lo, hi := 50*time.Millisecond, 150*time.Millisecond
		tab := newFaultTable(7)
		var buckets [4]int // quarters of the jitter range
		var sum time.Duration
		for range n {
			d := tab.roll(f).latency
			if d < lo || d > hi {
				t.Fatalf("latency %v outside [%v, %v]", d, lo, hi)
			}
			sum += d
			q := int((d - lo) * 4 / (hi - lo))
			buckets[min(q, 3)]++
		}
		for i, c := range buckets {
			// n/4 = 1000 expected per quarter; 800 is over six sigma away.
			if c < 800 || c > 1200 {
				t.Errorf("quarter %d of the jitter range holds %d of %d calls: not uniform (%v)", i, c, n, buckets)
			}
		}
		if mean := sum / n; mean < 95*time.Millisecond || mean > 105*time.Millisecond {
			t.Errorf("mean latency %v, want about 100ms", mean)
		}
	})

	t.Run("a fault without jitter has exactly its latency and rolls the dice as before", func(t *testing.T) {
		t.Parallel()
		plain, jittery := newFaultTable(7), newFaultTable(7)
		for range 100 {
			d := plain.roll(Fault{LatencyMS: 20, BusyRate: 0.5})
			if d.latency != 20*time.Millisecond {
				t.Fatalf("latency %v, want 20ms", d.latency)
			}
			// Four draws per call without jitter: the sequence of a seed
			// is what it was before jitter existed.
			for range 4 {
				jittery.rng.Float64()
			}
		}
		if a, b := plain.rng.Uint64(), jittery.rng.Uint64(); a != b {
			t.Fatalf("a fault without jitter drew more than four numbers per call")
		}
	})
}
