package events

import (
	"strings"
	"testing"
	"time"
)

func statusEvent(id string, seq int, state State) StatusEvent {
	return StatusEvent{OutOrderID: id, MgID: "mg", RoomID: "r1", FromUID: "001", State: state, Seq: seq,
		At: time.Date(2026, 12, 2, 6, 19, 13, 922_000_000, time.UTC), Provider: "mogs", Amount: 10}
}

func TestWatchPrintsAFullDateAndTime(t *testing.T) {
	t.Parallel()
	balance := int64(90)
	for _, c := range []struct {
		name string
		ev   StatusEvent
		want string
	}{
		{"a UTC time is printed with its date and milliseconds", statusEvent("o1", 1, StateAccepted),
			"2026-12-02 06:19:13.922Z  o1                   seq 1  accepted        mogs 10"},
		{"a time in another zone is printed in UTC", func() StatusEvent {
			ev := statusEvent("o1", 1, StateAccepted)
			ev.At = ev.At.In(time.FixedZone("CST", 8*3600))
			return ev
		}(), "2026-12-02 06:19:13.922Z  o1"},
		{"balance, SUD order and error follow", func() StatusEvent {
			ev := statusEvent("o1", 3, StateFailed)
			ev.Balance, ev.OrderID = &balance, "1795"
			ev.Error = &EventError{Code: CodeInsufficientBalance, Message: "too few coins"}
			return ev
		}(), "seq 3  failed          mogs 10 balance 90 sud 1795  error insufficient_balance: too few coins"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := FormatEvent(c.ev); !strings.Contains(got, c.want) {
				t.Errorf("got  %q\nwant %q in it", got, c.want)
			}
		})
	}
}
