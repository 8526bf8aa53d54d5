// Package events defines what crosses NATS: purchase intents, status
// events and dead letters, their subjects and streams, and the validation
// that decides whether an intent may become an order. Game servers import
// it to publish intents and watch status events.
package events

import (
	"encoding/json"
	"time"

	"github.com/coinsaga/coinsaga/internal/orderstate"
)

// Intent is a purchase intent published by a game server. The SUD fields
// are those of create_order; Payment says whose coins pay for it.
type Intent struct {
	OutOrderID string          `json:"out_order_id"`
	OutGroupID string          `json:"out_group_id,omitempty"`
	MgID       string          `json:"mg_id"`
	RoomID     string          `json:"room_id"`
	Cmd        string          `json:"cmd"`
	FromUID    string          `json:"from_uid"`
	ToUID      string          `json:"to_uid"`
	Value      int32           `json:"value"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	Payment    Payment         `json:"payment"`
}

// Provider names accepted in Payment.Provider.
const (
	ProviderMOGS  = "mogs"
	ProviderMidas = "midas"
)

// Payment is the coin debit behind an intent. Only the block of the chosen
// provider is needed. The login fields are secrets: they are stored to
// retry calls, and never appear in a status event, log line or API reply.
type Payment struct {
	Provider string        `json:"provider"`
	Amount   int64         `json:"amount"`
	OpenID   string        `json:"openid"`
	MOGS     *MOGSPayment  `json:"mogs,omitempty"`
	Midas    *MidasPayment `json:"midas,omitempty"`
}

// MOGSPayment is the MOGS login and request fields.
type MOGSPayment struct {
	JSCode     string `json:"js_code"`
	AppPlat    int    `json:"app_plat,omitempty"`
	OSPlatID   int    `json:"os_plat_id,omitempty"`
	SessionKey string `json:"session_key,omitempty"`
	PayItem    string `json:"pay_item,omitempty"`
}

// MidasPayment is the YSDK/Midas login and request fields.
type MidasPayment struct {
	OpenKey     string `json:"openkey"`
	PF          string `json:"pf"`
	PFKey       string `json:"pfkey"`
	ZoneID      string `json:"zoneid,omitempty"`
	SessionType string `json:"session_type,omitempty"`
	UserIP      string `json:"userip,omitempty"`
	AccountType string `json:"accounttype,omitempty"`
	PayItem     string `json:"payitem,omitempty"`
}

// State is an order's public state, as status events report it. It is
// declared in internal/orderstate, with the one list of states, so that
// the store can list the terminal ones without importing events.
type State = orderstate.State

const (
	StateAccepted       = orderstate.Accepted
	StateOrdered        = orderstate.Ordered
	StateDebited        = orderstate.Debited
	StateCompleted      = orderstate.Completed
	StateRejected       = orderstate.Rejected
	StateFailed         = orderstate.Failed
	StateCompensating   = orderstate.Compensating
	StateCompensated    = orderstate.Compensated
	StateNeedsAttention = orderstate.NeedsAttention
)

// States returns every state, in the order an order meets them: the list
// to range over wherever all states are needed (metrics, stats, schemas).
func States() []State { return orderstate.States() }

// TerminalStates returns the states after which no step runs (see
// State.Terminal), in the order of States.
func TerminalStates() []State { return orderstate.TerminalStates() }

// StatusEvent is published once per state change of an order. Seq starts at
// 1 and grows by one per event of an order; subscribers dedupe on it.
type StatusEvent struct {
	OutOrderID string      `json:"out_order_id"`
	OrderID    string      `json:"order_id,omitempty"`
	MgID       string      `json:"mg_id"`
	RoomID     string      `json:"room_id"`
	FromUID    string      `json:"from_uid"`
	State      State       `json:"state"`
	Seq        int         `json:"seq"`
	At         time.Time   `json:"at"`
	Provider   string      `json:"provider,omitempty"`
	BillNo     string      `json:"bill_no,omitempty"`
	Amount     int64       `json:"amount,omitempty"`
	Balance    *int64      `json:"balance,omitempty"`
	Error      *EventError `json:"error,omitempty"`
}

// EventError explains a failure state with a stable code.
type EventError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Reason is why a dead letter needs an operator.
type Reason string

const (
	ReasonInvalid        Reason = "invalid"         // undecodable, oversize or unsafe ids: no order exists
	ReasonRejected       Reason = "rejected"        // refused by validation or SUD 10002
	ReasonConflict       Reason = "conflict"        // same out_order_id, different body
	ReasonFailed         Reason = "failed"          // transient cause outlasted retries, or confirm timed out
	ReasonNeedsAttention Reason = "needs_attention" // compensation could not be completed
)

// Dead-letter and replay headers. The dead letter's body is the original
// intent bytes, unchanged, so a replay republishes exactly them; the one
// exception is a dead letter that carries HeaderTruncated.
//
//   - HeaderTruncated: "<original body size in bytes>", present only when
//     the intent and the dead-letter headers together exceed what NATS
//     takes in one message (the server's max_payload, or the dead-letter
//     stream's max_msg_size). The body is then the intent's first bytes,
//     as many as fit, and cannot be replayed.
const (
	HeaderMsgID           = "Nats-Msg-Id"
	HeaderReason          = "Coinsaga-Reason"
	HeaderError           = "Coinsaga-Error"
	HeaderState           = "Coinsaga-State"
	HeaderAttempts        = "Coinsaga-Attempts"
	HeaderFailedAt        = "Coinsaga-Failed-At"
	HeaderOriginalSubject = "Coinsaga-Original-Subject"
	HeaderTruncated       = "Coinsaga-Truncated"
	HeaderReplay          = "Coinsaga-Replay"
)
