package loadgen

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPacerSpacesOrdersEvenlyFromTheStart(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		rate  float64
		i     int
		after time.Duration
	}{
		{"the first order is due at the start", 100, 0, 0},
		{"at 100/s the second order is due 10 ms in", 100, 1, 10 * time.Millisecond},
		{"at 100/s order 250 is due 2.5 s in", 100, 250, 2500 * time.Millisecond},
		{"at 1000/s order 10000 is due 10 s in", 1000, 10000, 10 * time.Second},
		{"below one a second the orders are seconds apart", 0.5, 3, 6 * time.Second},
		{"with no rate every order is due at once", 0, 5000, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := (pacer{start: start, rate: tc.rate}).due(tc.i).Sub(start); got != tc.after {
				t.Errorf("due(%d) at %v/s = start+%v, want start+%v", tc.i, tc.rate, got, tc.after)
			}
		})
	}
}

func TestPacerWaitsOnlyForOrdersNotYetDue(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		p    pacer
		i    int
		want error
	}{
		{"with no rate it never waits, even with the context ended", pacer{start: time.Now().Add(time.Hour)}, 1, nil},
		{"an order already due goes at once", pacer{start: time.Now().Add(-time.Hour), rate: 1}, 10, nil},
		{"an order due later gives way to the context's end", pacer{start: time.Now(), rate: 1}, 3600, context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := tc.p.wait(cancelled, tc.i); !errors.Is(err, tc.want) {
				t.Errorf("wait = %v, want %v", err, tc.want)
			}
		})
	}
}
