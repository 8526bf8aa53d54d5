package store

import (
	"slices"
	"testing"

	"github.com/coinsaga/coinsaga/events"
)

// The store keeps its own list of terminal states so that it need not
// import events; this keeps the two from drifting apart.
func TestTerminalStatesMatchEvents(t *testing.T) {
	all := []events.State{
		events.StateAccepted, events.StateOrdered, events.StateDebited, events.StateCompleted,
		events.StateRejected, events.StateFailed, events.StateCompensating, events.StateCompensated,
		events.StateNeedsAttention,
	}
	for _, st := range all {
		if got, want := slices.Contains(terminalStates, string(st)), st.Terminal(); got != want {
			t.Errorf("state %s: prunable %v, but events says terminal %v", st, got, want)
		}
	}
}
