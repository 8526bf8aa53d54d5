package events

import "fmt"

// EventTimeLayout is a full UTC date and time to the millisecond, as
// FormatEvent prints it.
const EventTimeLayout = "2006-01-02 15:04:05.000Z07:00"

// FormatEvent is one human-readable line for a status event, as
// `coinsaga watch` prints it.
func FormatEvent(e StatusEvent) string {
	s := fmt.Sprintf("%s  %-20s seq %-2d %-15s %s %d", e.At.UTC().Format(EventTimeLayout), e.OutOrderID, e.Seq, e.State, e.Provider, e.Amount)
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
