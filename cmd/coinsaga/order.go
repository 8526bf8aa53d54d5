package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

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
	return reply.WriteText(stdout)
}
