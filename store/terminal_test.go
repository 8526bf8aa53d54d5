package store

import (
	"slices"
	"testing"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/store/internal/sqlcommon"
)

// The store takes its terminal states from internal/orderstate so that it
// need not import events; this checks that it prunes exactly those.
func TestTerminalStatesMatchEvents(t *testing.T) {
	for _, st := range events.States() {
		if got, want := slices.Contains(sqlcommon.TerminalStates, string(st)), st.Terminal(); got != want {
			t.Errorf("state %s: prunable %v, but events says terminal %v", st, got, want)
		}
	}
}
