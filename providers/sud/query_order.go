package sud

// query_order, and the order data it shares with create_order and the
// order notifications.

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/internal/wire"
)

// Order is what query_order (and an order notification) reports: the
// order's status and the fields it was created with, so that a worker that
// adopts an existing order can check it is the same order (mg_id, cmd,
// value, uids). A field SUD left out of its reply is empty: it did not say,
// which is not the same as a match.
type Order struct {
	OutOrderID string
	OrderID    string
	Status     string // StatusCreated, StatusExecuting, StatusExecuteFail, StatusExecuteSuccess
	OutGroupID string
	MgID       string
	RoomID     string
	Cmd        string
	FromUID    string
	ToUID      string
	// Value is as SUD wrote it, not narrowed to the int32 it should be,
	// so that a value no order of ours can have never looks like ours.
	Value int64
	// Payload is the payload object as SUD wrote it, "" when absent. SUD
	// may re-encode it (key order, spacing): compare it as JSON, not bytes.
	Payload string
}

// orderData is create_order's and query_order's data, and a notification's.
// The field names are those of SUD's public query_order doc
// (AppServerQueryOrderResp), which are create_order's own.
type orderData struct {
	OutOrderID wire.FlexString `json:"out_order_id"`
	OrderID    wire.FlexString `json:"order_id"`
	Status     string          `json:"status"`
	OutGroupID wire.FlexString `json:"out_group_id"`
	MgID       wire.FlexString `json:"mg_id"`
	RoomID     wire.FlexString `json:"room_id"`
	Cmd        string          `json:"cmd"`
	FromUID    wire.FlexString `json:"from_uid"`
	ToUID      wire.FlexString `json:"to_uid"`
	Value      wire.FlexInt    `json:"value"`
	Payload    json.RawMessage `json:"payload"`
}

// order is d as an Order.
func (d orderData) order() Order {
	o := Order{
		OutOrderID: string(d.OutOrderID), OrderID: string(d.OrderID), Status: d.Status,
		OutGroupID: string(d.OutGroupID), MgID: string(d.MgID), RoomID: string(d.RoomID), Cmd: d.Cmd,
		FromUID: string(d.FromUID), ToUID: string(d.ToUID), Value: int64(d.Value),
	}
	if p := bytes.TrimSpace(d.Payload); len(p) > 0 && !bytes.Equal(p, []byte("null")) {
		o.Payload = string(p)
	}
	return o
}

// QueryOrder reports the order with outOrderID; an unknown order (70503)
// is a Final error with CodeNotFound.
func (c *Client) QueryOrder(ctx context.Context, outOrderID string) (Order, error) {
	if err := checkID(EndpointQueryOrder, "out_order_id", outOrderID, true); err != nil {
		return Order{}, err
	}
	body, err := json.Marshal(struct {
		OutOrderID string `json:"out_order_id"`
	}{outOrderID})
	if err != nil {
		return Order{}, providers.ParamError(Provider, EndpointQueryOrder, "encode request: "+err.Error())
	}
	env, err := c.call(ctx, EndpointQueryOrder, outOrderID, body)
	if err != nil {
		return Order{}, err
	}
	o := env.Reply.order()
	o.OutOrderID = outOrderID // the reply may leave it out; it cannot differ (see roundTrip)
	return o, nil
}
