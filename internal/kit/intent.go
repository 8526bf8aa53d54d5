package kit

import (
	"fmt"

	"github.com/coinsaga/coinsaga/events"
)

// PlayerIntent is order i of a run named prefix: out_order_id
// prefix-0042, a dice roll paid with 10 MOGS coins by a player of its own
// (prefix-player-42), so that each order's debit shows on one account.
// It goes through events.DecodeIntent, as the worker reads it.
func PlayerIntent(prefix string, i int) events.Intent {
	data := fmt.Sprintf(`{"out_order_id":"%[1]s-%04[2]d","out_group_id":"g","mg_id":"1468180338417074177","room_id":"9009","cmd":"specify_dice_roll","from_uid":"p%[2]d","to_uid":"002","value":100,"payload":{"point":6,"seq":1},"payment":{"provider":"mogs","amount":10,"openid":"%[1]s-player-%[2]d","mogs":{"js_code":"xxx","app_plat":1,"os_plat_id":1,"pay_item":"dice"}}}`, prefix, i)
	in, err := events.DecodeIntent([]byte(data))
	if err != nil {
		panic(err)
	}
	return in
}
