package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/worker"
)

func runOrder(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var n natsFlags
	fs := newFlags("order", "order get [flags] <out_order_id>\n\nAsks a running worker (over NATS) for an order's state and whole history.", stderr)
	n.register(fs)
	asJSON := fs.Bool("json", false, "print the reply as JSON")
	timeout := fs.Duration("timeout", worker.DefaultOrderGetTimeout, "how long to wait for a worker to answer")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 0:
		return usageErrorf("missing subcommand: order get <out_order_id>")
	case fs.Arg(0) != "get":
		return usageErrorf("unknown subcommand %q: the one subcommand is get (order get <out_order_id>)", fs.Arg(0))
	case fs.NArg() == 1:
		return usageErrorf("order get needs the out_order_id of the order")
	case fs.NArg() > 2:
		return usageErrorf("order get takes one out_order_id, not %d: %q", fs.NArg()-1, fs.Args()[1:])
	}
	id := fs.Arg(1)
	if !events.ValidID(id) {
		return fmt.Errorf("%q is not a valid out_order_id", id)
	}
	nc, err := n.connect("order")
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	reply, err := worker.GetOrder(ctx, nc, events.Subjects{Prefix: n.prefix}.OrderGetAPI(), id)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(reply)
	}
	o := reply.Order
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
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
	fmt.Fprintln(stdout, "\nhistory:")
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tSTEP\tATTEMPT\tSTATE\tDETAIL")
	for _, h := range reply.History {
		detail := h.Detail
		if h.ErrorCode != "" && detail == "" {
			detail = h.ErrorCode + ": " + h.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", h.At.UTC().Format("2006-01-02T15:04:05.000Z"), h.Step, h.Attempt, h.State, detail)
	}
	return tw.Flush()
}
