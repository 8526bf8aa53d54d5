// Package orderstate names where an order is: its public State, with the
// one list of states, and the type of the saga's step names. It imports
// nothing, so that the store can use both without knowing NATS (events
// re-exports State) or the saga (the worker names and lists the steps).
package orderstate

// State is an order's public state, as status events report it.
type State string

const (
	Accepted       State = "accepted"
	Ordered        State = "ordered"
	Debited        State = "debited"
	Completed      State = "completed"
	Rejected       State = "rejected"
	Failed         State = "failed"
	Compensating   State = "compensating"
	Compensated    State = "compensated"
	NeedsAttention State = "needs_attention"
)

// states is the one list of states, in the order an order meets them,
// each with whether it is terminal: no further step runs for an order in
// it (until an operator replays it).
var states = [...]struct {
	state    State
	terminal bool
}{
	{Accepted, false},
	{Ordered, false},
	{Debited, false},
	{Completed, true},
	{Rejected, true},
	{Failed, true},
	{Compensating, false},
	{Compensated, true},
	{NeedsAttention, true},
}

// States returns every state, in the order an order meets them.
func States() []State {
	all := make([]State, len(states))
	for i, s := range states {
		all[i] = s.state
	}
	return all
}

// TerminalStates returns the terminal states, in the order of States.
func TerminalStates() []State {
	var t []State
	for _, s := range states {
		if s.terminal {
			t = append(t, s.state)
		}
	}
	return t
}

// Terminal reports whether no further step runs for an order in state s
// (until an operator replays it).
func (s State) Terminal() bool {
	for _, st := range states {
		if st.state == s {
			return st.terminal
		}
	}
	return false
}

// Step names what the saga does next for an order. The worker, which
// owns the saga, declares and lists the steps; the store only keeps the
// name.
type Step string
