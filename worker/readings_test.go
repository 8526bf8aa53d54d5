package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers"
)

// countingRead is a balance read that counts its calls and answers with
// cost_sum = the call's number.
type countingRead struct {
	calls atomic.Int64
	err   error
}

func (c *countingRead) read(context.Context) (providers.Balance, error) {
	n := c.calls.Add(1)
	return providers.Balance{CostSum: n}, c.err
}

func TestReadingsShareOnlyWhatIsNewEnough(t *testing.T) {
	key := readingKey{provider: "mogs", openID: "p1"}
	tests := []struct {
		name       string
		firstAt    time.Time // a reading taken then, before the one under test
		since, now time.Time
		wantShared bool
	}{
		{"a reading newer than since and younger than an interval is shared", t0, t0.Add(-time.Second), t0.Add(5 * time.Second), true},
		{"a reading older than since is not", t0, t0.Add(time.Second), t0.Add(5 * time.Second), false},
		{"a reading taken exactly at since is", t0, t0, t0.Add(5 * time.Second), true},
		{"a reading an interval old is not, whatever since says", t0, t0.Add(-time.Minute), t0.Add(15 * time.Second), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, src := newReadings(15*time.Second), &countingRead{}
			if _, err := rs.get(context.Background(), key, tt.firstAt, tt.firstAt, src.read); err != nil {
				t.Fatal(err)
			}
			got, err := rs.get(context.Background(), key, tt.since, tt.now, src.read)
			if err != nil {
				t.Fatal(err)
			}
			if got.shared != tt.wantShared {
				t.Fatalf("shared = %v, want %v", got.shared, tt.wantShared)
			}
			wantAt, wantCalls := tt.now, int64(2)
			if tt.wantShared {
				wantAt, wantCalls = tt.firstAt, 1
			}
			if !got.at.Equal(wantAt) || src.calls.Load() != wantCalls || got.CostSum != wantCalls {
				t.Errorf("reading at %v with cost_sum %d after %d reads, want at %v after %d", got.at, got.CostSum, src.calls.Load(), wantAt, wantCalls)
			}
		})
	}
}

func TestReadingsKeepAccountsApart(t *testing.T) {
	rs, src := newReadings(15*time.Second), &countingRead{}
	for _, k := range []readingKey{
		{provider: "mogs", openID: "p1"},
		{provider: "mogs", openID: "p2"},
		{provider: "midas", openID: "p1", zone: "1", accountType: "common"},
		{provider: "midas", openID: "p1", zone: "2", accountType: "common"},
	} {
		if got, _ := rs.get(context.Background(), k, t0, t0, src.read); got.shared {
			t.Errorf("%+v was served another account's reading", k)
		}
	}
	if n := src.calls.Load(); n != 4 {
		t.Errorf("%d reads for four accounts, want 4", n)
	}
}

func TestAFailedReadIsNeverShared(t *testing.T) {
	key := readingKey{provider: "mogs", openID: "p1"}
	rs, src := newReadings(15*time.Second), &countingRead{err: errors.New("connection reset")}
	if _, err := rs.get(context.Background(), key, t0, t0, src.read); err == nil {
		t.Fatal("the failing read reported no error")
	}
	src.err = nil
	got, err := rs.get(context.Background(), key, t0, t0.Add(time.Second), src.read)
	if err != nil || got.shared || src.calls.Load() != 2 {
		t.Errorf("after a failed read: shared %v, err %v, %d reads; want a read of its own", got.shared, err, src.calls.Load())
	}
}

func TestPollsDueTogetherShareTheReadUnderWay(t *testing.T) {
	key := readingKey{provider: "midas", openID: "p1", zone: "1"}
	rs := newReadings(15 * time.Second)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var calls atomic.Int64
	slowRead := func(context.Context) (providers.Balance, error) {
		calls.Add(1)
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return providers.Balance{Balance: 42}, nil
	}
	const polls = 8
	var wg sync.WaitGroup
	results := make([]balanceReading, polls)
	wg.Add(1)
	go func() { // the first poll starts the read and blocks in it
		defer wg.Done()
		results[0], _ = rs.get(context.Background(), key, t0, t0, slowRead)
	}()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the first read never started")
	}
	for i := 1; i < polls; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = rs.get(context.Background(), key, t0, t0.Add(time.Millisecond), slowRead)
		}()
	}
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d reads for %d polls due together, want 1", n, polls)
	}
	for i, r := range results {
		if r.Balance.Balance != 42 || !r.at.Equal(t0) || r.shared != (i > 0) {
			t.Errorf("poll %d got %+v", i, r)
		}
	}
}

func TestReadingsForgetWhatIsTooOld(t *testing.T) {
	rs, src := newReadings(15*time.Second), &countingRead{}
	for i := range 100 {
		rs.get(context.Background(), readingKey{provider: "mogs", openID: string(rune('a' + i))}, t0, t0, src.read)
	}
	rs.get(context.Background(), readingKey{provider: "mogs", openID: "late"}, t0, t0.Add(time.Minute), src.read)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if n := len(rs.byAccount); n != 1 {
		t.Errorf("%d readings kept a minute later, want only the newest", n)
	}
}
