package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/embednats"
)

// sampleIntent is docs/example-intent.json.
func sampleIntent() events.Intent {
	return events.Intent{
		OutOrderID: "1659497694000", OutGroupID: "1659497694",
		MgID: "1468180338417074177", RoomID: "9009",
		Cmd: "specify_dice_roll", FromUID: "001", ToUID: "002", Value: 100,
		Payload: json.RawMessage(`{"point":6,"seq":1}`),
		Payment: events.Payment{
			Provider: events.ProviderMOGS, Amount: 100, OpenID: "opvxI4y_cVJx2pxsFCQrJ4FZB5gk",
			MOGS: &events.MOGSPayment{JSCode: "xxx", AppPlat: 1, OSPlatID: 1, PayItem: "dice"},
		},
	}
}

func ExamplePublish() {
	js, stop := exampleJetStream() // a JetStream with coinsaga's streams: use yours
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := events.Subjects{} // the default prefix, coinsaga

	in := sampleIntent()
	res, err := events.Publish(ctx, js, s, in)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("published", res.OutOrderID, "to", res.Subject, "seq", res.Sequence)

	// A retry, after a lost ack say, is stored once.
	res, err = events.Publish(ctx, js, s, in)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("again: duplicate", res.Duplicate)

	// An intent the worker would refuse is not published at all.
	in.OutOrderID, in.Payment.Amount = "1659497694001", 0
	_, err = events.Publish(ctx, js, s, in)
	var ve *events.ValidationError
	if errors.As(err, &ve) {
		fmt.Println("refused:", ve.Field, ve.Problem)
	}
	// Output:
	// published 1659497694000 to coinsaga.intents.1468180338417074177.9009 seq 1
	// again: duplicate true
	// refused: payment.amount must be between 1 and 2147483647, got 0
}

func ExampleWaitTerminal() {
	js, stop := exampleJetStream() // a JetStream with coinsaga's streams: use yours
	defer stop()
	// Bound the wait: the worker confirms a debit within --confirm-timeout
	// (and SUD's verdict within --sud-execute-timeout).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := events.Subjects{}

	in := sampleIntent()
	if _, err := events.Publish(ctx, js, s, in); err != nil {
		log.Fatal(err)
	}
	served := make(chan struct{})
	go func() { // stands in for `coinsaga serve`
		defer close(served)
		declineForLackOfCoins(ctx, js, s, in)
	}()

	ev, err := events.WaitTerminal(ctx, js, s, in.OutOrderID)
	if err != nil {
		log.Fatal(err)
	}
	// The event can arrive before the stand-in has its publish ack; let it
	// finish before cancel ends its context.
	<-served
	fmt.Println(ev.OutOrderID, ev.State, "seq", ev.Seq)
	switch {
	case ev.State == events.StateCompleted:
		fmt.Println("run the action")
	case ev.Error != nil && ev.Error.Code == events.CodeInsufficientBalance:
		fmt.Println("tell the player to top up")
	default:
		fmt.Println("not charged, or an operator decides:", ev.State)
	}
	// Output:
	// 1659497694000 failed seq 2
	// tell the player to top up
}

// exampleJetStream starts an embedded NATS server, creates the streams
// as `coinsaga serve` does, and connects to it the way a game server
// would connect to its own: nats.Connect, then jetstream.New.
func exampleJetStream() (js jetstream.JetStream, stop func()) {
	dir, err := os.MkdirTemp("", "coinsaga-example-")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := embednats.Start(embednats.Options{Listen: "127.0.0.1:0", StoreDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	stop = func() {
		nc.Close()
		srv.Shutdown()
		os.RemoveAll(dir)
	}
	if js, err = jetstream.New(nc); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := events.EnsureStreams(ctx, js, events.Subjects{}, events.StreamOptions{Storage: jetstream.MemoryStorage}); err != nil {
		log.Fatal(err)
	}
	return js, stop
}

// declineForLackOfCoins publishes the status events a worker would for a
// player with too few coins.
func declineForLackOfCoins(ctx context.Context, js jetstream.JetStream, s events.Subjects, in events.Intent) {
	balance := int64(40)
	for i, ev := range []events.StatusEvent{
		{State: events.StateAccepted},
		{State: events.StateFailed, Balance: &balance,
			Error: &events.EventError{Code: events.CodeInsufficientBalance, Message: "balance 40 is below the amount 100"}},
	} {
		ev.OutOrderID, ev.MgID, ev.RoomID, ev.FromUID = in.OutOrderID, in.MgID, in.RoomID, in.FromUID
		ev.Seq, ev.At, ev.Provider, ev.Amount = i+1, time.Now().UTC(), in.Payment.Provider, in.Payment.Amount
		body, err := json.Marshal(ev)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := js.Publish(ctx, s.Status(ev.MgID, ev.RoomID, ev.OutOrderID), body, jetstream.WithMsgID(ev.MsgID())); err != nil {
			log.Fatal(err)
		}
	}
}
