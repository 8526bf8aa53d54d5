package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/store"
)

// field is one row of the order's table.
type field struct {
	Name, Value string
}

type orderData struct {
	Now      time.Time
	Order    store.Order
	Fields   []field
	Intent   string // masked
	History  []store.HistoryEntry
	Next     []string
	Terminal bool
	Letters  []Letter
	LetErr   string
	HasDLQ   bool
}

func (c *Console) orderSearch(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.URL.Query().Get("id"))
	if id == "" {
		c.fail(w, r, http.StatusBadRequest, "Which order?", "Give an out_order_id.")
		return
	}
	http.Redirect(w, r, "/orders/"+url.PathEscape(id), http.StatusSeeOther)
}

func (c *Console) orderPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !events.ValidID(id) {
		c.fail(w, r, http.StatusBadRequest, "Not an order id", fmt.Sprintf("%.64q is not an out_order_id (letters, digits, _ and -, at most 64).", id))
		return
	}
	ctx := r.Context()
	o, err := c.cfg.Orders.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, "No such order",
			fmt.Sprintf("The store has no order %s: it never arrived, was invalid (see dead letters), or was pruned after --retention.", id))
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "The store did not answer", err.Error())
		return
	}
	h, err := c.cfg.Orders.History(ctx, id)
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "The store did not answer", err.Error())
		return
	}
	d := orderData{Now: c.now(), Order: o, History: h, Fields: orderFields(o), HasDLQ: c.cfg.DeadLetters != nil,
		Terminal: events.State(o.State).Terminal()}
	// The intent holds the player's login; only its masked form is shown.
	d.Intent = string(events.MaskSecrets(o.Intent))
	if c.cfg.DeadLetters != nil {
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		d.Letters, err = c.cfg.DeadLetters.List(lctx, LetterFilter{MgID: o.MgID, OutOrderID: o.OutOrderID, Limit: 20}, 0)
		cancel()
		if err != nil && !errors.Is(err, ErrNoStream) {
			d.LetErr = err.Error()
		}
	}
	d.Next = nextSteps(o, len(d.Letters) > 0, d.Now)
	c.render(w, r, http.StatusOK, "order", "Order "+o.OutOrderID, d)
}

// orderFields lists every stored field but the intent's bytes, which
// hold secrets and are shown masked apart.
func orderFields(o store.Order) []field {
	t := func(v time.Time) string {
		if v.IsZero() {
			return "–"
		}
		return v.UTC().Format(time.RFC3339Nano)
	}
	b := func(v bool) string {
		if v {
			return "yes"
		}
		return "no"
	}
	n := func(v int64) string { return fmt.Sprint(v) }
	return []field{
		{"out_order_id", o.OutOrderID}, {"mg_id (game)", o.MgID}, {"room_id", o.RoomID}, {"from_uid", o.FromUID},
		{"provider", o.Provider}, {"amount", n(o.Amount)},
		{"state", string(o.State)}, {"step (next)", string(o.Step)}, {"seq (last event)", fmt.Sprint(o.Seq)}, {"attempt at step", fmt.Sprint(o.Attempt)},
		{"next run at", t(o.NextRunAt)},
		{"SUD order_id", dash(o.SudOrderID)}, {"SUD status", dash(o.SudStatus)}, {"SUD took it at", t(o.OrderedAt)},
		{"bill_no", dash(o.BillNo)}, {"bill generation", fmt.Sprint(o.PayGeneration)}, {"bill first sent at", t(o.FirstPayAt)},
		{"pay answer unknown", b(o.PayUnknown)},
		{"baseline read", b(o.HasBaseline)}, {"baseline balance", n(o.BaselineBalance)}, {"baseline save_amt", n(o.BaselineSaveAmt)},
		{"baseline cost_sum", n(o.BaselineCostSum)}, {"baseline gifted balance", n(o.BaselineGenBalance)},
		{"pay reported balance", b(o.HasPayBalance)}, {"balance after pay", n(o.PayBalance)}, {"gifted coins used", n(o.UsedGenAmt)},
		{"debited at", t(o.DebitedAt)},
		{"error code", dash(o.ErrorCode)}, {"error", dash(o.Error)},
		{"intent subject", dash(o.IntentSubject)}, {"intent hash", dash(o.BodyHash)},
		{"created at", t(o.CreatedAt)}, {"updated at", t(o.UpdatedAt)}, {"version", n(o.Version)},
	}
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// business declines are the player's outcome, not an operator's task.
var declines = map[string]bool{
	string(events.CodeInsufficientBalance): true, string(events.CodeLoginFailed): true, string(events.CodeRiskControl): true,
}

// nextSteps says what an operator can do with the order now, following
// docs/operations.md.
func nextSteps(o store.Order, hasLetter bool, now time.Time) []string {
	switch events.State(o.State) {
	case events.StateCompleted:
		return []string{"Nothing: the order is complete, debited once and executed by SUD. A replay would charge nothing."}
	case events.StateAccepted, events.StateOrdered, events.StateDebited, events.StateCompensating:
		when := "as soon as a step slot is free"
		if !o.NextRunAt.IsZero() && o.NextRunAt.After(now) {
			when = "in " + ageText(o.NextRunAt.Sub(now))
		}
		s := []string{fmt.Sprintf("Wait: the saga runs step %s next (attempt %d so far), %s. Follow it in the live feed.", o.Step, o.Attempt, when)}
		if o.State == events.StateCompensating {
			s = append(s, "A debit may exist: the cancel of bill "+o.BillNo+" is running. Do not refund by hand.")
		}
		return s
	case events.StateRejected:
		return []string{"The intent broke a rule (see the error). Fix the game server or the catalog; replaying the dead letter validates it again."}
	case events.StateFailed:
		if declines[o.ErrorCode] {
			return []string{"Nothing: " + o.ErrorCode + " is the player's outcome (nothing was charged), not a dead letter."}
		}
		s := []string{"Nothing was charged. Once the cause is fixed or over, replay the dead letter: the order resumes at step " + string(o.Step) + " with the same keys."}
		if !hasLetter {
			s = append(s, "No dead letter is listed for it (replayed or purged already?).")
		}
		return s
	case events.StateCompensated:
		return []string{"The debit was cancelled; every coin is back. A replay pays again under the next bill generation, if the purchase should still happen."}
	case events.StateNeedsAttention:
		return []string{
			"A debit may exist and coinsaga could not decide. Check bill " + dash(o.BillNo) + " (" + o.Provider + ", amount " + fmt.Sprint(o.Amount) + ") at the provider.",
			"When the provider answers cancels again, replay the dead letter: the order resumes at " + string(o.Step) + " with the same bill_no.",
			"If the provider will not cancel it, refund by the provider's own means and purge the dead letter. Never refund by hand and replay.",
		}
	}
	return nil
}
