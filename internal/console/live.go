package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coinsaga/coinsaga/events"
)

// liveFilter is the feed's query: ids as the status subject's tokens, and
// states matched on the event.
type liveFilter struct {
	Game, Room, Order string
	States            []string
	Problem           string
}

func readLiveFilter(q url.Values) liveFilter {
	f := liveFilter{Game: strings.TrimSpace(q.Get("game")), Room: strings.TrimSpace(q.Get("room")), Order: strings.TrimSpace(q.Get("order"))}
	for _, id := range []struct{ name, v string }{{"game", f.Game}, {"room", f.Room}, {"order", f.Order}} {
		if id.v != "" && !events.ValidID(id.v) {
			f.Problem = fmt.Sprintf("%s %.64q is not a valid id (letters, digits, _ and -, at most 64)", id.name, id.v)
		}
	}
	for _, s := range q["state"] {
		for _, one := range strings.Split(s, ",") {
			if one = strings.TrimSpace(one); one == "" {
				continue
			}
			if !knownState(one) {
				f.Problem = fmt.Sprintf("state %.32q is not an order state", one)
				continue
			}
			f.States = append(f.States, one)
		}
	}
	return f
}

func knownState(s string) bool {
	for _, k := range allStates {
		if string(k) == s {
			return true
		}
	}
	return false
}

func (f liveFilter) query() string {
	q := url.Values{}
	for k, v := range map[string]string{"game": f.Game, "room": f.Room, "order": f.Order} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for _, s := range f.States {
		q.Add("state", s)
	}
	return q.Encode()
}

func (f liveFilter) wants(state string) bool {
	if len(f.States) == 0 {
		return true
	}
	for _, s := range f.States {
		if s == state {
			return true
		}
	}
	return false
}

type liveData struct {
	Filter    liveFilter
	Query     string
	States    []string
	Selected  map[string]bool
	Available bool
}

func (c *Console) livePage(w http.ResponseWriter, r *http.Request) {
	f := readLiveFilter(r.URL.Query())
	d := liveData{Filter: f, Query: f.query(), Selected: map[string]bool{}, Available: c.cfg.Status != nil}
	for _, s := range allStates {
		d.States = append(d.States, string(s))
	}
	for _, s := range f.States {
		d.Selected[s] = true
	}
	status := http.StatusOK
	if f.Problem != "" {
		status = http.StatusBadRequest
	}
	c.render(w, r, status, "live", "Live feed", d)
}

// writeEvent sends one status event as it was published (its fields hold
// no secret), which spares encoding it again; a body on several lines,
// which SSE cannot carry in one data field, is encoded afresh.
func writeEvent(w io.Writer, enc *json.Encoder, ev events.Watched) {
	if len(ev.Raw) > 0 && !bytes.ContainsAny(ev.Raw, "\r\n") {
		_, _ = w.Write(append(append([]byte("data: "), ev.Raw...), "\n\n"...))
		return
	}
	_, _ = io.WriteString(w, "data: ")
	_ = enc.Encode(ev.Event) // ends the line
	_, _ = io.WriteString(w, "\n")
}

// liveEvents streams status events as server-sent events. An order
// filter starts from that order's last event, so the feed shows where it
// is at once; other filters show new events only.
func (c *Console) liveEvents(w http.ResponseWriter, r *http.Request) {
	f := readLiveFilter(r.URL.Query())
	if f.Problem != "" {
		http.Error(w, f.Problem, http.StatusBadRequest)
		return
	}
	if c.cfg.Status == nil {
		http.Error(w, "no status stream configured", http.StatusServiceUnavailable)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	// A stopping serve ends the feed too: http.Server.Shutdown waits for
	// connections to go idle, which a stream never does.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	wf := events.WatchFilter{MgID: f.Game, RoomID: f.Room, OutOrderID: f.Order, LastPerOrder: f.Order != ""}
	watch, err := c.cfg.Status.Watch(ctx, wf)
	if err != nil {
		http.Error(w, "watching status events: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer watch.Stop()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// "ready" says the consumer exists: an event published from now on
	// reaches this feed.
	fmt.Fprint(w, "retry: 2000\nevent: ready\ndata: {}\n\n")
	flusher.Flush()

	// One reader fills a buffer; the writer flushes once per burst, so a
	// thousand events a second cost tens of flushes, not a thousand.
	got := make(chan events.Watched, 1024)
	go func() {
		defer close(got)
		for {
			ev, err := watch.Next(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if ev.Raw == nil {
					return // the watch broke: end the feed, the browser reconnects
				}
				continue // one undecodable event; go on
			}
			select {
			case got <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	enc := json.NewEncoder(w)
	for {
		select {
		case <-ctx.Done():
			return
		case <-keepAlive.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			flusher.Flush()
		case ev, ok := <-got:
			for n := 1; ; n++ {
				if !ok {
					fmt.Fprint(w, "event: end\ndata: {}\n\n")
					flusher.Flush()
					return
				}
				if f.wants(string(ev.Event.State)) {
					writeEvent(w, enc, ev)
				}
				if len(got) == 0 || n%256 == 0 {
					break
				}
				ev, ok = <-got
			}
			flusher.Flush()
		}
	}
}
