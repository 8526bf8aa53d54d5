package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// appendEvent adds one status event to the feed's buffer as it was
// published (its fields hold no secret), which spares encoding it again;
// a body on several lines, which SSE cannot carry in one data field, is
// encoded afresh.
func appendEvent(buf []byte, ev events.Watched) []byte {
	if len(ev.Raw) > 0 && !bytes.ContainsAny(ev.Raw, "\r\n") {
		buf = append(buf, "data: "...)
		buf = append(buf, ev.Raw...)
		return append(buf, "\n\n"...)
	}
	data, err := json.Marshal(ev.Event)
	if err != nil {
		return buf
	}
	buf = append(buf, "data: "...)
	buf = append(buf, data...)
	return append(buf, "\n\n"...)
}

// stateOf is the event's state, read from its body when the watch left
// Event zero: only the one field is decoded.
func stateOf(ev events.Watched) string {
	if ev.Event.State != "" || len(ev.Raw) == 0 {
		return string(ev.Event.State)
	}
	var only struct {
		State string `json:"state"`
	}
	_ = json.Unmarshal(ev.Raw, &only)
	return only.State
}

// liveEvents streams status events as server-sent events. An order
// filter starts from that order's last event, so the feed shows where it
// is at once; other filters show new events only.
//
// The feed writes at most once per Config.FeedEvery (100 ms): each time
// it takes every event that arrived since, in one write and one flush.
// At 1,000 orders/s that is ten writes a second instead of thousands,
// and no wake-up of the handler per event.
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
	// "ready" says the watch exists: an event published from now on
	// reaches this feed.
	_, _ = io.WriteString(w, "retry: 2000\nevent: ready\ndata: {}\n\n")
	flusher.Flush()

	feed, ok := watch.(poller)
	if !ok {
		feed = readAhead(ctx, watch)
	}
	dropper, _ := watch.(interface{ Dropped() int })
	dropped := 0
	tick := time.NewTicker(c.cfg.FeedEvery)
	defer tick.Stop()
	idle := time.Duration(0)
	buf := make([]byte, 0, 16<<10)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		buf = buf[:0]
		ended := false
		for {
			ev, ok, err := feed.Poll()
			if err != nil && ev.Raw == nil {
				ended = true // the watch broke: end the feed, the browser reconnects
				break
			}
			if !ok {
				break
			}
			if err != nil || !f.wants(stateOf(ev)) {
				continue // an undecodable event, or one the filter leaves out
			}
			if buf = appendEvent(buf, ev); len(buf) >= 32<<10 {
				if _, err := w.Write(buf); err != nil {
					return
				}
				buf = buf[:0]
			}
		}
		if dropper != nil {
			if n := dropper.Dropped(); n > dropped {
				buf = fmt.Appendf(buf, "event: dropped\ndata: {\"count\":%d}\n\n", n-dropped)
				dropped = n
			}
		}
		if ended {
			buf = append(buf, "event: end\ndata: {}\n\n"...)
		}
		if len(buf) == 0 {
			if idle += c.cfg.FeedEvery; idle < 15*time.Second {
				continue
			}
			buf = append(buf, ": keep-alive\n\n"...)
		}
		idle = 0
		if _, err := w.Write(buf); err != nil {
			return
		}
		flusher.Flush()
		if ended {
			return
		}
	}
}

// readAhead polls a watch that can only block: one goroutine reads it
// into a buffer until it ends or ctx does.
func readAhead(ctx context.Context, watch StatusStream) poller {
	got := make(chan events.Watched, 1024)
	go func() {
		defer close(got)
		for {
			ev, err := watch.Next(ctx)
			if err != nil {
				if ctx.Err() != nil || ev.Raw == nil {
					return // done, or the watch broke
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
	return chanPoller(got)
}

type chanPoller <-chan events.Watched

var errWatchEnded = errors.New("watch ended")

func (c chanPoller) Poll() (events.Watched, bool, error) {
	select {
	case ev, open := <-c:
		if !open {
			return events.Watched{}, false, errWatchEnded
		}
		return ev, true, nil
	default:
		return events.Watched{}, false, nil
	}
}
