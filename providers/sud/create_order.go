package sud

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/coinsaga/coinsaga/providers"
)

// CreateOrderRequest is create_order's body, field for field.
type CreateOrderRequest struct {
	OutOrderID string          `json:"out_order_id"`
	OutGroupID string          `json:"out_group_id,omitempty"`
	MGID       string          `json:"mg_id"`
	RoomID     string          `json:"room_id"`
	Cmd        string          `json:"cmd"`
	FromUID    string          `json:"from_uid"`
	ToUID      string          `json:"to_uid"`
	Value      int32           `json:"value"`
	Payload    json.RawMessage `json:"payload,omitempty"`
}

// CreateOrderReply is a successful create_order. On AlreadyDone (70501:
// the out_order_id exists) SUD does not say its order_id, so OrderID is
// empty and the caller asks QueryOrder.
type CreateOrderReply struct {
	Class      providers.Class
	OutOrderID string
	OrderID    string
}

// CreateOrder places the in-game paid order, keyed by r.OutOrderID.
func (c *Client) CreateOrder(ctx context.Context, r CreateOrderRequest) (CreateOrderReply, error) {
	if err := checkID(EndpointCreateOrder, "out_order_id", r.OutOrderID, true); err != nil {
		return CreateOrderReply{}, err
	}
	if err := checkID(EndpointCreateOrder, "out_group_id", r.OutGroupID, false); err != nil {
		return CreateOrderReply{}, err
	}
	if p := bytes.TrimSpace(r.Payload); len(p) == 0 || bytes.Equal(p, []byte("null")) {
		r.Payload = nil
	}
	body, err := json.Marshal(r)
	if err != nil {
		return CreateOrderReply{}, providers.ParamError(Provider, EndpointCreateOrder, "encode request: "+err.Error())
	}
	env, err := c.call(ctx, EndpointCreateOrder, r.OutOrderID, body)
	if err != nil {
		return CreateOrderReply{}, err
	}
	if env.Class == providers.AlreadyDone {
		return CreateOrderReply{Class: providers.AlreadyDone, OutOrderID: r.OutOrderID}, nil
	}
	return CreateOrderReply{Class: providers.OK, OutOrderID: r.OutOrderID, OrderID: string(env.Reply.OrderID)}, nil
}

// checkID refuses an id SUD would refuse, before it leaves the process.
func checkID(endpoint, name, v string, required bool) error {
	switch {
	case required && v == "":
		return providers.ParamError(Provider, endpoint, "empty "+name)
	case utf8.RuneCountInString(v) > maxOutOrderID:
		return providers.ParamError(Provider, endpoint, fmt.Sprintf("%s longer than %d characters", name, maxOutOrderID))
	}
	return nil
}
