package sandbox

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// The sandbox clock is Config.Now moved on by every AdvanceClock. Bills,
// their 48-hour expiry, visibility delays, account times and the Midas ts
// check all read it, so a test can let two days pass without waiting.

// Now returns the sandbox clock. A client whose requests carry a timestamp
// (Midas ts) must take it from here after AdvanceClock, as a real client's
// clock agrees with the real service's.
func (s *Sandbox) Now() time.Time { return s.now() }

// AdvanceClock moves the sandbox clock d forward and returns the new time.
// It panics on a negative d: a clock that runs back would un-expire bills,
// which no real service does, so that is a bug in the test.
func (s *Sandbox) AdvanceClock(d time.Duration) time.Time {
	if d < 0 {
		panic(fmt.Sprintf("sandbox: AdvanceClock(%v): the clock only moves forward", d))
	}
	done := s.changing()
	s.clockOffset.Add(int64(d))
	done()
	return s.now()
}

// clockReply is the answer of POST /_sandbox/clock.
type clockReply struct {
	Now time.Time `json:"now"`
}

// adminPostClock serves POST /_sandbox/clock {"advance":"49h"} (a Go
// duration, not negative) and answers {"now":RFC 3339 time}.
func (s *Sandbox) adminPostClock(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Advance *string `json:"advance"`
	}
	if err := decodeStrictBody(w, r, &body); err != nil || body.Advance == nil {
		adminError(w, http.StatusBadRequest, `body must be {"advance":"<Go duration, e.g. 49h>"}`)
		return
	}
	d, err := time.ParseDuration(*body.Advance)
	if err != nil {
		adminError(w, http.StatusBadRequest, "advance: "+err.Error())
		return
	}
	if d < 0 {
		adminError(w, http.StatusBadRequest, "advance must not be negative: the clock only moves forward")
		return
	}
	adminJSON(w, http.StatusOK, clockReply{Now: s.AdvanceClock(d).UTC()})
}

// AdvanceClock moves a sandbox's clock d forward and returns its new time.
func (a *AdminClient) AdvanceClock(ctx context.Context, d time.Duration) (time.Time, error) {
	var out clockReply
	err := a.do(ctx, http.MethodPost, "/_sandbox/clock", map[string]string{"advance": d.String()}, &out)
	return out.Now, err
}
