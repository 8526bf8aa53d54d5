package providertest

import (
	"sync"
	"time"

	"github.com/coinsaga/coinsaga/providers"
)

// Recorder is an Observer that keeps every observation as
// "provider endpoint class".
type Recorder struct {
	mu    sync.Mutex
	calls []string
}

var _ providers.Observer = (*Recorder)(nil)

// ObserveCall implements providers.Observer. A negative elapsed time
// would skew every latency metric, so it stops the test binary.
func (r *Recorder) ObserveCall(provider, endpoint string, class providers.Class, elapsed time.Duration) {
	if elapsed < 0 {
		panic("negative elapsed")
	}
	r.mu.Lock()
	r.calls = append(r.calls, provider+" "+endpoint+" "+class.String())
	r.mu.Unlock()
}

// Last returns the latest observation, "" before the first.
func (r *Recorder) Last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return ""
	}
	return r.calls[len(r.calls)-1]
}
