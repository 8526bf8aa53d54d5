package embednats_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/embednats"
)

const intent = `{"out_order_id":"o-1","mg_id":"1468180338417074177","room_id":"9009","cmd":"specify_dice_roll",
 "from_uid":"001","to_uid":"002","value":100,"payload":{"point":6,"seq":1},
 "payment":{"provider":"mogs","amount":100,"openid":"op1","mogs":{"js_code":"x","app_plat":1,"os_plat_id":1}}}`

func connect(t *testing.T, s *embednats.Server) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestEmbeddedServerCarriesTheCoinsagaStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	s, err := embednats.Start(embednats.Options{Listen: "127.0.0.1:0", StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	js := connect(t, s)
	subj := events.Subjects{}

	t.Run("ensuring the streams twice changes nothing", func(t *testing.T) {
		for i := range 2 {
			if _, err := events.EnsureStreams(ctx, js, subj, events.StreamOptions{}); err != nil {
				t.Fatalf("run %d: %v", i+1, err)
			}
		}
		for _, name := range []string{"COINSAGA_INTENTS", "COINSAGA_STATUS", "COINSAGA_DLQ"} {
			if _, err := js.Stream(ctx, name); err != nil {
				t.Errorf("stream %s: %v", name, err)
			}
		}
	})

	t.Run("an intent published twice is stored once", func(t *testing.T) {
		first, _, err := events.PublishIntent(ctx, js, subj, []byte(intent), events.DefaultCatalog())
		if err != nil {
			t.Fatal(err)
		}
		second, _, err := events.PublishIntent(ctx, js, subj, []byte(intent), events.DefaultCatalog())
		if err != nil {
			t.Fatal(err)
		}
		if first.Duplicate || !second.Duplicate || second.Sequence != first.Sequence {
			t.Fatalf("first %+v, second %+v", first, second)
		}
		st, err := js.Stream(ctx, subj.IntentsStream())
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 1 {
			t.Fatalf("%d messages, want 1", info.State.Msgs)
		}
		msg, err := st.GetMsg(ctx, first.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Subject != "coinsaga.intents.1468180338417074177.9009" || msg.Header.Get(events.HeaderMsgID) != "o-1" || string(msg.Data) != intent {
			t.Fatalf("stored %s %v %s", msg.Subject, msg.Header, msg.Data)
		}
	})

	t.Run("a watcher sees a status event published after it started", func(t *testing.T) {
		w, err := events.Watch(ctx, js, subj, events.WatchFilter{OutOrderID: "o-1"})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		ev := events.StatusEvent{OutOrderID: "o-1", MgID: "1468180338417074177", RoomID: "9009", State: events.StateAccepted, Seq: 1, At: time.Now().UTC()}
		body, _ := json.Marshal(ev)
		if _, err := js.Publish(ctx, subj.Status(ev.MgID, ev.RoomID, ev.OutOrderID), body, jetstream.WithMsgID(ev.MsgID())); err != nil {
			t.Fatal(err)
		}
		got, err := w.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.Event.State != events.StateAccepted || got.Event.Seq != 1 || string(got.Raw) != string(body) || got.Seq == 0 {
			t.Fatalf("watched %+v", got)
		}
	})

	t.Run("a restart on the same store keeps the streams and their messages", func(t *testing.T) {
		s.Shutdown()
		s2, err := embednats.Start(embednats.Options{Listen: "127.0.0.1:0", StoreDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Shutdown()
		js2 := connect(t, s2)
		for name, want := range map[string]uint64{"COINSAGA_INTENTS": 1, "COINSAGA_STATUS": 1, "COINSAGA_DLQ": 0} {
			st, err := js2.Stream(ctx, name)
			if err != nil {
				t.Fatalf("stream %s after restart: %v", name, err)
			}
			info, err := st.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.State.Msgs != want {
				t.Errorf("stream %s: %d messages, want %d", name, info.State.Msgs, want)
			}
		}
	})
}

func TestStartRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		o    embednats.Options
	}{
		{"a missing store directory", embednats.Options{Listen: "127.0.0.1:0"}},
		{"a listen address without a port", embednats.Options{Listen: "127.0.0.1", StoreDir: t.TempDir()}},
		{"a port out of range", embednats.Options{Listen: "127.0.0.1:70000", StoreDir: t.TempDir()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := embednats.Start(tt.o); err == nil {
				s.Shutdown()
				t.Fatal("want an error")
			}
		})
	}
}

func TestStartTestGivesAServerThatStopsWithTheTest(t *testing.T) {
	var url string
	t.Run("inner", func(t *testing.T) {
		s := embednats.StartTest(t)
		url = s.ClientURL()
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		nc.Close()
	})
	_, err := nats.Connect(url, nats.NoReconnect(), nats.Timeout(time.Second))
	if err == nil || !errors.Is(err, nats.ErrNoServers) {
		t.Fatalf("server still answers after its test ended: %v", err)
	}
}

func TestKeepJetStreamStartsItAgainAfterTheServerShutItDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := embednats.Start(embednats.Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	js := connect(t, s)
	if _, err := events.EnsureStreams(ctx, js, events.Subjects{}, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := events.PublishIntent(ctx, js, events.Subjects{}, []byte(intent), events.DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
	if err := s.ShutdownJetStreamLikeAFullDisk(); err != nil {
		t.Fatal(err)
	}
	if s.JetStreamEnabled() {
		t.Fatal("JetStream still on after the shutdown")
	}
	go s.KeepJetStream(ctx, 20*time.Millisecond)

	for {
		callCtx, cancelCall := context.WithTimeout(ctx, time.Second)
		st, err := js.Stream(callCtx, "COINSAGA_INTENTS")
		cancelCall()
		if err == nil {
			if n := st.CachedInfo().State.Msgs; n != 1 {
				t.Fatalf("the intents stream came back with %d messages, want 1", n)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("JetStream did not come back: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !s.JetStreamEnabled() {
		t.Fatal("JetStream answers but reports itself off")
	}
}

func TestAPortInUseFailsAtOnceNamingTheCause(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	start := time.Now()
	s, err := embednats.Start(embednats.Options{Listen: addr, StoreDir: t.TempDir()})
	if err == nil {
		s.Shutdown()
		t.Fatal("started on a port in use")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %s to fail; the ready timeout must not be waited out", took)
	}
	var le *embednats.ListenError
	if !errors.As(err, &le) || le.Addr != addr || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("err = %#v, want a ListenError for %s with EADDRINUSE", err, addr)
	}
	if want := "listen " + addr + ": address already in use"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}
