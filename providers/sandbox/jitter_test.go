package sandbox_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers/sandbox"
)

func TestLatencyJitter(t *testing.T) {
	t.Parallel()

	t.Run("replies spread over latency_ms to latency_ms plus latency_jitter_ms", func(t *testing.T) {
		t.Parallel()
		const (
			calls    = 40
			latency  = 50 * time.Millisecond
			jitter   = 200 * time.Millisecond
			overhead = 100 * time.Millisecond // a loaded machine under -race
		)
		sb := sandbox.New(sandbox.Config{Seed: 3})
		sb.SetFault(sandbox.Fault{Endpoint: "mogs.getbalance", LatencyMS: int(latency / time.Millisecond), LatencyJitterMS: int(jitter / time.Millisecond)})
		var mu sync.Mutex
		var took []time.Duration
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sb.ServeHTTP(w, r)
			mu.Lock()
			took = append(took, time.Since(start))
			mu.Unlock()
		}))
		t.Cleanup(srv.Close)

		var wg sync.WaitGroup
		errs := make(chan error, calls)
		for range calls {
			wg.Go(func() {
				resp, err := http.Post(srv.URL+"/mogs/getbalance?appid=10000&app_plat=1&openid=p1&js_code=c", "application/json", strings.NewReader(`{"os_plat_id":1}`))
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		lo, hi := took[0], took[0]
		for _, d := range took {
			if d < latency || d > latency+jitter+overhead {
				t.Fatalf("a reply took %v, outside [%v, %v] (plus %v of overhead)", d, latency, latency+jitter, overhead)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		// 40 uniform draws over 200 ms: the fastest and the slowest are
		// within 50 ms of the ends but for a chance of 2·0.75^40 ≈ 2e-5.
		if lo > latency+jitter/4 || hi < latency+3*jitter/4 {
			t.Fatalf("replies took %v to %v: not spread over [%v, %v]", lo, hi, latency, latency+jitter)
		}
	})

	t.Run("a negative latency_jitter_ms is refused", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		err := sandbox.NewAdminClient(e.srv.URL).SetFault(context.Background(), sandbox.Fault{Endpoint: "mogs.pay", LatencyJitterMS: -1})
		if err == nil {
			t.Fatal("accepted")
		}
	})

	t.Run("latency_jitter_ms goes over the admin API and back", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		f := sandbox.Fault{Endpoint: "midas.pay_m", LatencyMS: 5, LatencyJitterMS: 10}
		if got := e.faultOverHTTP(f); len(got) != 1 || got[0] != f {
			t.Fatalf("faults = %+v, want [%+v]", got, f)
		}
	})
}
