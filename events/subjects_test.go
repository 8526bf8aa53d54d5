package events

import (
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestSubjects(t *testing.T) {
	def := Subjects{}
	custom := Subjects{Prefix: "acme.pay-v2"}
	tests := []struct {
		name, got, want string
	}{
		{"the zero value uses the default prefix for intents", def.Intent("mg", "room"), "coinsaga.intents.mg.room"},
		{"all intents are one wildcard", def.Intents(), "coinsaga.intents.>"},
		{"a status subject ends with the order", def.Status("mg", "room", "o1"), "coinsaga.status.mg.room.o1"},
		{"a status filter keeps every given part", def.StatusFilter("mg", "room", "o1"), "coinsaga.status.mg.room.o1"},
		{"a status filter turns empty parts into *", def.StatusFilter("mg", "", ""), "coinsaga.status.mg.*.*"},
		{"a status filter of nothing matches every order", def.StatusFilter("", "", ""), "coinsaga.status.*.*.*"},
		{"a status filter may pick one order in any room", def.StatusFilter("", "", "o1"), "coinsaga.status.*.*.o1"},
		{"a dead letter subject ends with the order", def.DeadLetter("mg", "room", "o1"), "coinsaga.dlq.mg.room.o1"},
		{"a dead letter filter turns empty parts into *", def.DeadLetterFilter("", "room", ""), "coinsaga.dlq.*.room.*"},
		{"undecodable input has its own dead letter subject", def.DeadLetterInvalid(), "coinsaga.dlq._invalid"},
		{"all dead letters are one wildcard", def.DeadLetters(), "coinsaga.dlq.>"},
		{"all status events are one wildcard", def.Statuses(), "coinsaga.status.>"},
		{"order get has a fixed API subject", def.OrderGetAPI(), "coinsaga.api.order.get"},
		{"the intents stream is upper-cased", def.IntentsStream(), "COINSAGA_INTENTS"},
		{"the status stream is upper-cased", def.StatusStream(), "COINSAGA_STATUS"},
		{"the dead letter stream is upper-cased", def.DLQStream(), "COINSAGA_DLQ"},
		{"a custom prefix leads every subject", custom.Intent("mg", "room"), "acme.pay-v2.intents.mg.room"},
		{"a custom prefix's dots and dashes become _ in stream names", custom.DLQStream(), "ACME_PAY_V2_DLQ"},
		{"an explicit default prefix equals the zero value", Subjects{Prefix: DefaultPrefix}.StatusStream(), def.StatusStream()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestStreamConfigs(t *testing.T) {
	t.Run("zero options give R1 file streams with the documented limits", func(t *testing.T) {
		cfgs := StreamConfigs(Subjects{}, StreamOptions{})
		if len(cfgs) != 3 {
			t.Fatalf("%d configs", len(cfgs))
		}
		in, st, dlq := cfgs[0], cfgs[1], cfgs[2]
		if in.Name != "COINSAGA_INTENTS" || in.Subjects[0] != "coinsaga.intents.>" || in.Retention != jetstream.WorkQueuePolicy || in.Duplicates != 2*time.Minute {
			t.Errorf("intents: %+v", in)
		}
		if st.Name != "COINSAGA_STATUS" || st.Subjects[0] != "coinsaga.status.>" || st.Retention != jetstream.LimitsPolicy || st.MaxAge != 24*time.Hour || st.MaxBytes != 1<<30 {
			t.Errorf("status: %+v", st)
		}
		if dlq.Name != "COINSAGA_DLQ" || dlq.Subjects[0] != "coinsaga.dlq.>" || dlq.Retention != jetstream.LimitsPolicy || dlq.MaxAge != 0 || dlq.Duplicates != 2*time.Minute {
			t.Errorf("dlq: %+v", dlq)
		}
		for _, c := range cfgs {
			if c.Replicas != 1 || c.Storage != jetstream.FileStorage {
				t.Errorf("%s: replicas %d storage %v", c.Name, c.Replicas, c.Storage)
			}
		}
	})
	t.Run("given options are used as they are", func(t *testing.T) {
		cfgs := StreamConfigs(Subjects{Prefix: "x"}, StreamOptions{Replicas: 3, DuplicateWindow: time.Hour, StatusMaxAge: time.Minute, StatusMaxBytes: 10, Storage: jetstream.MemoryStorage})
		if cfgs[1].MaxAge != time.Minute || cfgs[1].MaxBytes != 10 || cfgs[0].Duplicates != time.Hour || cfgs[2].Replicas != 3 || cfgs[2].Storage != jetstream.MemoryStorage || cfgs[0].Name != "X_INTENTS" {
			t.Fatalf("%+v", cfgs)
		}
	})
}

func TestStatusEventMsgID(t *testing.T) {
	e := StatusEvent{OutOrderID: "1659497694000", Seq: 3}
	if got := e.MsgID(); got != "1659497694000:3" {
		t.Fatalf("got %q", got)
	}
}

func TestDeadLetterFromMsg(t *testing.T) {
	failedAt := time.Date(2026, 11, 21, 10, 0, 0, 123456000, time.UTC)
	h := DeadLetterHeaders(DeadLetter{
		Reason: ReasonFailed, Error: "pay: system busy\nafter 8 attempts", State: string(StateCompensated),
		Attempts: 8, FailedAt: failedAt, OriginalSubject: "coinsaga.intents.mg.room",
	})
	tests := []struct {
		name string
		msg  jetstream.RawStreamMsg
		want DeadLetter
	}{
		{
			"an order's dead letter carries its ids and every header",
			jetstream.RawStreamMsg{Subject: "coinsaga.dlq.mg.room.o1", Sequence: 7, Header: h, Data: []byte(`{"x":1}`)},
			DeadLetter{StreamSeq: 7, Subject: "coinsaga.dlq.mg.room.o1", Reason: ReasonFailed, Error: "pay: system busy after 8 attempts",
				State: "compensated", Attempts: 8, FailedAt: failedAt, OriginalSubject: "coinsaga.intents.mg.room",
				Data: []byte(`{"x":1}`), OutOrderID: "o1", MgID: "mg", RoomID: "room"},
		},
		{
			"ids are read from the end, so a dotted prefix works",
			jetstream.RawStreamMsg{Subject: "acme.pay.dlq.mg.room.o1", Sequence: 1},
			DeadLetter{StreamSeq: 1, Subject: "acme.pay.dlq.mg.room.o1", OutOrderID: "o1", MgID: "mg", RoomID: "room"},
		},
		{
			"an invalid intent's dead letter has no ids",
			jetstream.RawStreamMsg{Subject: "coinsaga.dlq._invalid", Sequence: 2, Header: nats.Header{HeaderReason: []string{"invalid"}}, Data: []byte("garbage")},
			DeadLetter{StreamSeq: 2, Subject: "coinsaga.dlq._invalid", Reason: ReasonInvalid, Data: []byte("garbage")},
		},
		{
			"a truncated dead letter says how large the intent was",
			jetstream.RawStreamMsg{Subject: "coinsaga.dlq._invalid", Sequence: 4,
				Header: DeadLetterHeaders(DeadLetter{Reason: ReasonInvalid, TruncatedFrom: 1048376}), Data: []byte(`{"pad":"xx`)},
			DeadLetter{StreamSeq: 4, Subject: "coinsaga.dlq._invalid", Reason: ReasonInvalid, TruncatedFrom: 1048376, Data: []byte(`{"pad":"xx`)},
		},
		{
			"a damaged truncation header still marks the body as cut",
			jetstream.RawStreamMsg{Subject: "coinsaga.dlq._invalid", Sequence: 5, Header: nats.Header{HeaderTruncated: []string{"lots"}}, Data: []byte("abc")},
			DeadLetter{StreamSeq: 5, Subject: "coinsaga.dlq._invalid", TruncatedFrom: 4, Data: []byte("abc")},
		},
		{
			"damaged headers leave zero values instead of failing",
			jetstream.RawStreamMsg{Subject: "coinsaga.dlq.mg.room.o1", Sequence: 3, Header: nats.Header{HeaderAttempts: []string{"many"}, HeaderFailedAt: []string{"yesterday"}}},
			DeadLetter{StreamSeq: 3, Subject: "coinsaga.dlq.mg.room.o1", OutOrderID: "o1", MgID: "mg", RoomID: "room"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DeadLetterFromMsg(&tt.msg)
			if string(got.Data) != string(tt.want.Data) {
				t.Fatalf("data %q, want %q", got.Data, tt.want.Data)
			}
			got.Data, tt.want.Data = nil, nil
			if !got.FailedAt.Equal(tt.want.FailedAt) {
				t.Fatalf("failed at %v, want %v", got.FailedAt, tt.want.FailedAt)
			}
			got.FailedAt, tt.want.FailedAt = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
