package worker

import (
	"reflect"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/store"
)

func TestAWaitingOrderKeepsWhatItsPollsRead(t *testing.T) {
	row := store.Order{OutOrderID: "o1", MgID: "mg", RoomID: "room", FromUID: "u1", Provider: events.ProviderMidas,
		Amount: 100, Intent: []byte(`{}`), State: events.StateDebited, Step: StepConfirm, Seq: 3, Attempt: 2,
		NextRunAt: t0.Add(30 * time.Second), SudOrderID: "sud-1", BillNo: "o1.1", PayGeneration: 1,
		HasBaseline: true, BaselineBalance: 1000, BaselineSaveAmt: 50, BaselineCostSum: 500,
		HasPayBalance: true, PayBalance: 900, UsedGenAmt: 20, DebitedAt: t0,
		ErrorCode: "busy", Error: "an earlier read failed", CreatedAt: t0, UpdatedAt: t0, Version: 7}
	acct := providers.Account{OpenID: "p1", Midas: providers.MidasLogin{OpenKey: "k", PF: "pf", PFKey: "pfk", ZoneID: "1"}}

	t.Run("its view is the row's confirm view", func(t *testing.T) {
		if got, want := waitingOf(row, acct).view(), confirmView(row); !reflect.DeepEqual(got, want) {
			t.Errorf("view:\n%+v\nwant:\n%+v", got, want)
		}
	})
	t.Run("it polls the account it was given", func(t *testing.T) {
		if got := waitingOf(row, acct).account(); got != acct {
			t.Errorf("account %+v, want %+v", got, acct)
		}
	})
	t.Run("orders of one player share one copy of the account", func(t *testing.T) {
		other := row
		other.OutOrderID = "o2"
		same := providers.Account{OpenID: "p1", Midas: providers.MidasLogin{OpenKey: "k", PF: "pf", PFKey: "pfk", ZoneID: "1"}}
		if waitingOf(row, acct).acct != waitingOf(other, same).acct {
			t.Error("equal accounts were not interned to one")
		}
	})
	t.Run("polls that saw nothing carry over onto the row they follow", func(t *testing.T) {
		wo := waitingOf(row, acct)
		polled := wo.view()
		polled.Attempt, polled.NextRunAt, polled.ErrorCode, polled.Error = 4, t0.Add(60*time.Second), "", ""
		got := wo.after(polled).onto(row)
		if got.Attempt != 4 || !got.NextRunAt.Equal(t0.Add(60*time.Second)) || got.ErrorCode != "" || got.MgID != "mg" {
			t.Errorf("row after the polls: %+v", got)
		}
		moved := row
		moved.Version++
		if got := wo.after(polled).onto(moved); got.Attempt != row.Attempt {
			t.Errorf("polls applied to a row that moved on: attempt %d", got.Attempt)
		}
	})
}
