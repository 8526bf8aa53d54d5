package worker

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteText writes r as `coinsaga order get` shows it: the order's fields,
// then its history, one line per step.
func (r OrderReply) WriteText(w io.Writer) error {
	o := r.Order
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "order\t%s\n", o.OutOrderID)
	fmt.Fprintf(tw, "state\t%s (next step: %s)\n", o.State, o.Step)
	fmt.Fprintf(tw, "game / room / player\t%s / %s / %s\n", o.MgID, o.RoomID, o.FromUID)
	fmt.Fprintf(tw, "provider / amount\t%s / %d\n", o.Provider, o.Amount)
	fmt.Fprintf(tw, "bill_no\t%s\n", o.BillNo)
	fmt.Fprintf(tw, "SUD order id\t%s\n", o.SudOrderID)
	if o.HasPayBalance {
		fmt.Fprintf(tw, "balance after pay\t%d\n", o.PayBalance)
	}
	if o.ErrorCode != "" {
		fmt.Fprintf(tw, "error\t%s: %s\n", o.ErrorCode, o.Error)
	}
	fmt.Fprintf(tw, "created / updated\t%s / %s\n", o.CreatedAt.UTC().Format(time.RFC3339Nano), o.UpdatedAt.UTC().Format(time.RFC3339Nano))
	tw.Flush()
	fmt.Fprintln(w, "\nhistory:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tSTEP\tATTEMPT\tSTATE\tDETAIL")
	for _, h := range r.History {
		detail := h.Detail
		if h.ErrorCode != "" && detail == "" {
			detail = h.ErrorCode + ": " + h.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", h.At.UTC().Format("2006-01-02T15:04:05.000Z"), h.Step, h.Attempt, h.State, detail)
	}
	return tw.Flush()
}
