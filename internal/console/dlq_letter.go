package console

// One dead letter's page: its body (masked) and headers.

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"
)

type header struct{ Name, Value string }

type letterData struct {
	Now     time.Time
	Letter  Letter // its Body is masked
	Headers []header
}

func (c *Console) letterPage(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		c.fail(w, r, http.StatusBadRequest, "Not a dead letter", "A dead letter is named by its stream sequence, a number above 0.")
		return
	}
	if c.cfg.DeadLetters == nil {
		c.fail(w, r, http.StatusServiceUnavailable, "No dead-letter stream", "This console has no dead-letter service.")
		return
	}
	l, err := c.cfg.DeadLetters.Get(r.Context(), seq)
	if errors.Is(err, ErrNoLetter) || errors.Is(err, ErrNoStream) {
		c.fail(w, r, http.StatusNotFound, "No such dead letter", fmt.Sprintf("Dead letter %d is not in the stream: replayed or purged already, or never there.", seq))
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "The dead-letter stream did not answer", err.Error())
		return
	}
	d := letterData{Now: c.now(), Letter: l}
	for k, vs := range l.Header {
		for _, v := range vs {
			d.Headers = append(d.Headers, header{k, v})
		}
	}
	sort.Slice(d.Headers, func(i, j int) bool { return d.Headers[i].Name < d.Headers[j].Name })
	c.render(w, r, http.StatusOK, "letter", fmt.Sprintf("Dead letter %d", seq), d)
}
