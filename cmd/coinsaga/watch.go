package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/cli"
)

const watchSynopsis = `watch [--mg-id ID] [--room ID] [--order ID [--follow]] [--all | --since DURATION|TIME] [--json]

Prints status events as they are published, one line each. By default it
starts with the next event; --all starts at the oldest the status stream
holds, --since at a time (a duration back from now such as 90s or 2h, or
an RFC 3339 time such as 2026-12-02T06:19:13Z). With --order it starts at
that order's current state and exits 0 after the order's terminal event,
unless --follow keeps it watching (a replay may run the order again).
Lost and regained connections to NATS are told on stderr.`

func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var n natsFlags
	fs := newFlags("watch", watchSynopsis, stderr)
	n.register(fs)
	var f events.WatchFilter
	since := cli.SinceFlag{Layout: events.EventTimeLayout}
	fs.StringVar(&f.MgID, "mg-id", "", "only this game")
	fs.StringVar(&f.RoomID, "room", "", "only this room")
	fs.StringVar(&f.OutOrderID, "order", "", "only this out_order_id: start at its current state, exit after its terminal event")
	fs.BoolVar(&f.DeliverAll, "all", false, "start from the oldest stored event instead of new ones")
	fs.Var(&since, "since", "start from the events stored since this long ago (90s, 2h) or this RFC 3339 time")
	follow := fs.Bool("follow", false, "with --order: keep watching after the order's terminal event")
	asJSON := fs.Bool("json", false, "print each event exactly as published, one per line")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: watch takes only flags", fs.Arg(0))
	}
	for _, id := range []string{f.MgID, f.RoomID, f.OutOrderID} {
		if id != "" && !events.ValidID(id) {
			return fmt.Errorf("%q is not a valid id (want [A-Za-z0-9_-]{1,64})", id)
		}
	}
	f.Since = since.T
	switch {
	case f.DeliverAll && !f.Since.IsZero():
		return errors.New("give --all or --since, not both")
	case *follow && f.OutOrderID == "":
		return errors.New("--follow needs --order: without it, watch follows every event until interrupted")
	case f.OutOrderID != "" && !f.DeliverAll && f.Since.IsZero():
		// Its current state first: an order that is done already is told
		// at once instead of waited for forever.
		f.LastPerOrder = true
	}
	nc, err := n.connect("watch")
	if err != nil {
		return err
	}
	errOut := &cli.LockedWriter{W: stderr}
	cli.TellConnection(nc, errOut, "coinsaga watch")
	defer func() {
		// Closing is no lost connection.
		nc.SetDisconnectErrHandler(nil)
		nc.Close()
	}()
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
			if ev.Subject != "" {
				// A message that is not a status event: say so, go on.
				fmt.Fprintf(errOut, "coinsaga watch: skipped %v\n", err)
				continue
			}
			return err
		}
		if *asJSON {
			fmt.Fprintf(stdout, "%s\n", ev.Raw)
		} else {
			fmt.Fprintln(stdout, events.FormatEvent(ev.Event))
		}
		if f.OutOrderID != "" && !*follow && ev.Event.OutOrderID == f.OutOrderID && ev.Event.State.Terminal() {
			return nil
		}
	}
}
