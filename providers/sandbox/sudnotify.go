package sandbox

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// SUD's order notifications. When an order's execution ends (at once, or
// after a fault's execute_delay_ms), SUD POSTs sud.mg.merchant.order.changed
// to the app's notify URL, signed like Sud-Auth, and repeats it until the
// app answers {"ret_code":0,"ret_msg":"SUCCESS"}.
//
// One goroutine schedules every notification (it exists only while some are
// pending) and at most sudNotifyInflight deliveries run at a time, so that
// 50,000 executing orders cost heap entries, not goroutines.

const (
	sudEventOrderChanged = "sud.mg.merchant.order.changed"
	// sudNotifyAttempts is how many times one notification is sent before
	// the sandbox gives up on it. ASSUMPTION: SUD documents that it retries,
	// not how often; five attempts spaced 100, 200, 400 and 800 ms keep a
	// test's wait short and still cover a receiver's brief outage.
	sudNotifyAttempts = 5
	sudNotifyBackoff  = 100 * time.Millisecond // doubled after each failed attempt
	sudNotifyInflight = 8
	// sudNotifyPoll bounds how long the scheduler sleeps while an order is
	// executing, so that it notices a test moving Config.Now.
	sudNotifyPoll    = 50 * time.Millisecond
	sudNotifyTimeout = 5 * time.Second
)

// sudNote is one notification to send.
type sudNote struct {
	o       *sudOrder
	due     time.Time // executing: the order's doneAt (sandbox clock); retry: wall clock
	attempt int       // attempts made
}

// noteHeap orders notes by due time, then by order, so that orders created
// at the same instant are notified in creation order.
type noteHeap []*sudNote

func (h noteHeap) Len() int { return len(h) }
func (h noteHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].o.seq < h[j].o.seq
}
func (h noteHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *noteHeap) Push(x any)   { *h = append(*h, x.(*sudNote)) }
func (h *noteHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return n
}

// sudNotifier sends the notifications of one sandbox. Its zero value is not
// usable: see newSUDNotifier.
type sudNotifier struct {
	url    atomic.Pointer[string] // nil: no notifications
	client *http.Client

	delivered, refused, abandoned atomic.Uint64

	mu        sync.Mutex
	executing noteHeap // orders whose execution has not ended, by doneAt
	retries   noteHeap // notes whose last attempt failed, by next attempt
	inflight  int
	running   bool          // the scheduler goroutine is alive
	wake      chan struct{} // pokes the scheduler; capacity 1
	// pending holds the orders whose notification is scheduled and not yet
	// delivered or given up, for the state file (nil without one: see
	// track). restored are orders of a loaded state file whose
	// notification was pending; they are scheduled when a URL is set.
	pending  map[*sudOrder]struct{}
	restored []*sudOrder
	closed   bool // Sandbox.Close: nothing more is sent
}

func newSUDNotifier() *sudNotifier {
	return &sudNotifier{
		client: &http.Client{Timeout: sudNotifyTimeout},
		wake:   make(chan struct{}, 1),
	}
}

// SUDNotifyStats counts the sandbox's order notifications.
type SUDNotifyStats struct {
	Delivered uint64 // answered {"ret_code":0,"ret_msg":"SUCCESS"}
	Refused   uint64 // attempts answered otherwise, or not at all
	Abandoned uint64 // notifications given up after sudNotifyAttempts
	Pending   int    // notifications still to send (executing, retrying or in flight)
}

// checkSUDNotifyURL accepts "" (no notifications) or an absolute http(s) URL.
func checkSUDNotifyURL(u string) error {
	if u == "" {
		return nil
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("notify url %q is not an absolute http(s) URL", u)
	}
	return nil
}

// SetSUDNotifyURL sets where SUD's order notifications go; "" stops them.
// Orders created while no URL is set are never notified; a notification
// still pending goes to the URL in force when it is sent. It panics on a
// URL that is not absolute http(s): that is a bug in the caller.
func (s *Sandbox) SetSUDNotifyURL(u string) {
	if err := checkSUDNotifyURL(u); err != nil {
		panic("sandbox: SetSUDNotifyURL: " + err.Error())
	}
	s.setSUDNotifyURL(u)
}

// setSUDNotifyURL sets the notify URL and schedules the notifications a
// loaded state file had pending, now that they have somewhere to go.
func (s *Sandbox) setSUDNotifyURL(u string) {
	n := s.sud.notify
	n.setURL(u)
	if u == "" {
		return
	}
	n.mu.Lock()
	restored := n.restored
	n.restored = nil
	n.mu.Unlock()
	for _, o := range restored {
		n.schedule(s, o)
	}
}

// close stops the notifier for good; pending notes stay where they are.
func (n *sudNotifier) close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.poke()
}

// track makes the notifier keep the set of orders whose notification is
// pending, for the state file.
func (n *sudNotifier) track() {
	n.mu.Lock()
	n.pending = make(map[*sudOrder]struct{})
	n.mu.Unlock()
}

// pendingOrders is every order whose notification is still to be sent:
// scheduled, retrying, in flight, or restored and waiting for a URL.
func (n *sudNotifier) pendingOrders() map[*sudOrder]struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[*sudOrder]struct{}, len(n.pending)+len(n.restored))
	for o := range n.pending {
		out[o] = struct{}{}
	}
	for _, o := range n.restored {
		out[o] = struct{}{}
	}
	return out
}

// SUDNotifyURL is where SUD's order notifications go, "" for nowhere.
func (s *Sandbox) SUDNotifyURL() string {
	if p := s.sud.notify.url.Load(); p != nil {
		return *p
	}
	return ""
}

// SUDNotifyStats counts the order notifications sent so far.
func (s *Sandbox) SUDNotifyStats() SUDNotifyStats {
	n := s.sud.notify
	n.mu.Lock()
	pending := len(n.executing) + len(n.retries) + n.inflight
	n.mu.Unlock()
	return SUDNotifyStats{Delivered: n.delivered.Load(), Refused: n.refused.Load(), Abandoned: n.abandoned.Load(), Pending: pending}
}

// SetSUDNotifyURL sets where the sandbox sends SUD's order notifications
// ("" stops them).
func (a *AdminClient) SetSUDNotifyURL(ctx context.Context, u string) error {
	return a.do(ctx, http.MethodPut, "/_sandbox/sud/notify", map[string]string{"url": u}, nil)
}

func (n *sudNotifier) setURL(u string) {
	if u == "" {
		n.url.Store(nil)
		return
	}
	n.url.Store(&u)
}

// schedule queues the notification of o's execution, if anyone listens.
func (n *sudNotifier) schedule(s *Sandbox, o *sudOrder) {
	if n.url.Load() == nil {
		return
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	heap.Push(&n.executing, &sudNote{o: o, due: o.doneAt})
	if n.pending != nil {
		n.pending[o] = struct{}{}
	}
	if !n.running {
		n.running = true
		go n.run(s)
	}
	n.mu.Unlock()
	n.poke()
}

func (n *sudNotifier) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// run starts the deliveries that are due and sleeps until the next one is;
// it returns when nothing is left to do.
func (n *sudNotifier) run(s *Sandbox) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		n.mu.Lock()
		if n.closed {
			n.running = false
			n.mu.Unlock()
			return
		}
		now, wall := s.now(), time.Now()
		for n.inflight < sudNotifyInflight {
			var nt *sudNote
			switch {
			case len(n.executing) > 0 && !n.executing[0].due.After(now):
				nt = heap.Pop(&n.executing).(*sudNote)
			case len(n.retries) > 0 && !n.retries[0].due.After(wall):
				nt = heap.Pop(&n.retries).(*sudNote)
			}
			if nt == nil {
				break
			}
			n.inflight++
			go n.deliver(s, nt)
		}
		if len(n.executing) == 0 && len(n.retries) == 0 && n.inflight == 0 {
			n.running = false
			n.mu.Unlock()
			return
		}
		wait := time.Duration(-1) // until poked
		if n.inflight < sudNotifyInflight {
			if len(n.executing) > 0 {
				wait = min(n.executing[0].due.Sub(now), sudNotifyPoll)
			}
			if len(n.retries) > 0 {
				if d := n.retries[0].due.Sub(wall); wait < 0 || d < wait {
					wait = d
				}
			}
		}
		n.mu.Unlock()
		if wait < 0 {
			<-n.wake
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-n.wake:
			timer.Stop()
		}
	}
}

type noteResult int

const (
	noteDelivered noteResult = iota
	noteRefused
	noteDropped // no URL any more
)

// deliver makes one attempt and files the note by its outcome.
func (n *sudNotifier) deliver(s *Sandbox, nt *sudNote) {
	res, why := n.post(s, nt)
	n.mu.Lock()
	n.inflight--
	if n.closed {
		// The note stays pending: a sandbox opened on the state file
		// sends it (again, if this attempt got through: receivers take
		// repeats, as SUD's retries make them anyway).
		n.mu.Unlock()
		return
	}
	nt.attempt++
	finished := true
	switch {
	case res == noteDelivered:
		n.delivered.Add(1)
	case res == noteDropped:
	case nt.attempt < sudNotifyAttempts:
		finished = false
		n.refused.Add(1)
		nt.due = time.Now().Add(sudNotifyBackoff << (nt.attempt - 1))
		heap.Push(&n.retries, nt)
		s.cfg.Logger.Debug("sandbox: SUD notify refused, will retry", "out_order_id", nt.o.OutOrderID, "attempt", nt.attempt, "reason", why)
	default:
		n.refused.Add(1)
		n.abandoned.Add(1)
		s.cfg.Logger.Info("sandbox: SUD notify abandoned", "out_order_id", nt.o.OutOrderID, "attempts", nt.attempt, "reason", why)
	}
	if finished && n.pending != nil {
		delete(n.pending, nt.o)
		// The state file no longer owes this notification.
		s.persist.markDirty()
	}
	n.mu.Unlock()
	n.poke()
}

// sudNotifyData is the order part of a notification (SUD's
// OrderChangedModel; round_id and seq are left out: the sandbox has no game
// rounds).
type sudNotifyData struct {
	OrderID    string `json:"order_id"`
	OutOrderID string `json:"out_order_id"`
	sudOrderFields
	Status string `json:"status"`
}

type sudNotifyEnvelope struct {
	NotifyID    string        `json:"notify_id"`
	NotifyTime  string        `json:"notify_time"`
	AppID       string        `json:"app_id"`
	NotifyEvent string        `json:"notify_event"`
	Data        sudNotifyData `json:"data"`
}

// sudNotifyID names the notification of o's final status. ASSUMPTION: SUD
// keeps a notification's id across its retries (so that a receiver can
// recognise a repeat); here it is hex SHA-256 of order_id and status, 64
// hex digits like the docs' example.
func sudNotifyID(o *sudOrder) string {
	h := sha256.Sum256([]byte(o.OrderID + "\n" + o.finalStatus()))
	return hex.EncodeToString(h[:])
}

// post sends the note once, freshly signed, and reports whether the
// receiver took it, and if not why (for the log: never the signature).
func (n *sudNotifier) post(s *Sandbox, nt *sudNote) (noteResult, string) {
	u := n.url.Load()
	if u == nil {
		return noteDropped, ""
	}
	o := nt.o
	signedAt := s.now()
	body, err := json.Marshal(sudNotifyEnvelope{
		NotifyID: sudNotifyID(o), NotifyTime: strconv.FormatInt(signedAt.UnixMilli(), 10),
		AppID: s.cfg.SUDAppID, NotifyEvent: sudEventOrderChanged,
		Data: sudNotifyData{
			OrderID: o.OrderID, OutOrderID: o.OutOrderID, sudOrderFields: o.sudOrderFields, Status: o.finalStatus(),
		},
	})
	if err != nil {
		return noteRefused, "encode: " + err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), sudNotifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *u, bytes.NewReader(body))
	if err != nil {
		return noteRefused, "request: " + err.Error()
	}
	// Each attempt is signed anew, so that a retry after a long outage is
	// not refused as stale. Seconds, like Sud-Auth (providers.md).
	ts, nonce := strconv.FormatInt(signedAt.Unix(), 10), rand.Text()
	req.Header.Set("Content-Type", "application/json;charset=utf-8")
	req.Header.Set("Sud-AppId", s.cfg.SUDAppID)
	req.Header.Set("Sud-Timestamp", ts)
	req.Header.Set("Sud-Nonce", nonce)
	req.Header.Set("Sud-Signature", sudSignature(s.cfg.SUDAppSecret, s.cfg.SUDAppID, ts, nonce, body))
	resp, err := n.client.Do(req)
	if err != nil {
		return noteRefused, "transport: " + err.Error()
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return noteRefused, "read answer: " + err.Error()
	}
	if resp.StatusCode != http.StatusOK {
		return noteRefused, "HTTP " + strconv.Itoa(resp.StatusCode)
	}
	// ASSUMPTION: the docs call ret_code 0 success; the sandbox also wants
	// ret_msg "SUCCESS", the documented answer, so that a receiver that
	// answers anything else is caught here rather than by the real SUD.
	var ans struct {
		RetCode *int   `json:"ret_code"`
		RetMsg  string `json:"ret_msg"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil || ans.RetCode == nil || *ans.RetCode != 0 || ans.RetMsg != "SUCCESS" {
		return noteRefused, "answer is not {\"ret_code\":0,\"ret_msg\":\"SUCCESS\"}"
	}
	return noteDelivered, ""
}
