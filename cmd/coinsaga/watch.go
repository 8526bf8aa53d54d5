package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
)

func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var n natsFlags
	fs := newFlags("watch", "watch [--mg-id ID] [--room ID] [--order ID] [--json] [--all]", stderr)
	n.register(fs)
	var f events.WatchFilter
	fs.StringVar(&f.MgID, "mg-id", "", "only this game")
	fs.StringVar(&f.RoomID, "room", "", "only this room")
	fs.StringVar(&f.OutOrderID, "order", "", "only this out_order_id")
	fs.BoolVar(&f.DeliverAll, "all", false, "start from the oldest stored event instead of new ones")
	asJSON := fs.Bool("json", false, "print each event exactly as published, one per line")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	for _, id := range []string{f.MgID, f.RoomID, f.OutOrderID} {
		if id != "" && !events.ValidID(id) {
			return fmt.Errorf("%q is not a valid id (want [A-Za-z0-9_-]{1,64})", id)
		}
	}
	nc, err := n.connect("watch")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	w, err := events.Watch(ctx, js, events.Subjects{Prefix: n.prefix}, f)
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		ev, err := w.Next(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		if *asJSON {
			fmt.Fprintf(stdout, "%s\n", ev.Raw)
			continue
		}
		fmt.Fprintln(stdout, formatEvent(ev.Event))
	}
}

// formatEvent is one human-readable line per status event.
func formatEvent(e events.StatusEvent) string {
	s := fmt.Sprintf("%s  %-20s seq %-2d %-15s %s %d", e.At.Format("15:04:05.000"), e.OutOrderID, e.Seq, e.State, e.Provider, e.Amount)
	if e.Balance != nil {
		s += fmt.Sprintf(" balance %d", *e.Balance)
	}
	if e.OrderID != "" {
		s += " sud " + e.OrderID
	}
	if e.Error != nil {
		s += fmt.Sprintf("  error %s: %s", e.Error.Code, e.Error.Message)
	}
	return s
}
