package loadgen

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
)

// games mixes several catalog games (and one the catalog does not know,
// which gets the generic checks only).
var games = []struct {
	mgID, cmd string
	value     int32
	payload   string
}{
	{"1468180338417074177", "specify_dice_roll", 100, `{"point":6,"seq":1}`},
	{"1472142747708284929", "buy_role", 50, `{"role_id":3}`},
	{"1559736844916183041", "gift", 4, ``},
	{"1704460412809043970", "paid_events_20", 300, `{"point":12,"quality":3}`},
	{"1461228379255603251", "add_score", 100, ``},
}

// intentGen builds the i-th intent of a run.
type intentGen struct {
	subjects   events.Subjects
	prefix     string
	midasShare float64
	players    int
}

func newIntentGen(s events.Subjects, prefix string, midasShare float64, players int) *intentGen {
	return &intentGen{subjects: s, prefix: prefix, midasShare: midasShare, players: players}
}

// isMidas spreads the Midas orders evenly (Bresenham), so any prefix of
// the run has the requested share.
func (g *intentGen) isMidas(i int) bool {
	return int(float64(i+1)*g.midasShare) > int(float64(i)*g.midasShare)
}

func (g *intentGen) msg(i int) *nats.Msg {
	id := g.prefix + "-" + strconv.Itoa(i)
	game := games[i%len(games)]
	player := "p" + g.prefix + "-" + strconv.Itoa(i%g.players)
	in := events.Intent{
		OutOrderID: id, OutGroupID: "bench", MgID: game.mgID, RoomID: "room" + strconv.Itoa(i%7),
		Cmd: game.cmd, FromUID: player, ToUID: "host", Value: game.value,
		Payment: events.Payment{Provider: events.ProviderMOGS, Amount: int64(1 + i%97), OpenID: player},
	}
	if game.payload != "" {
		in.Payload = json.RawMessage(game.payload)
	}
	if g.isMidas(i) {
		in.Payment.Provider = events.ProviderMidas
		in.Payment.Midas = &events.MidasPayment{OpenKey: "bench-openkey-" + player, PF: "qq_m_qq-2001-android",
			PFKey: "bench-pfkey", ZoneID: "1", SessionType: "kp_actoken", AccountType: "common"}
	} else {
		in.Payment.MOGS = &events.MOGSPayment{JSCode: "bench-js-" + player, AppPlat: 1, OSPlatID: 1, PayItem: "dice"}
	}
	data, err := json.Marshal(in)
	if err != nil {
		panic(fmt.Sprintf("bench intent %d: %v", i, err)) // only plain fields: cannot fail
	}
	m := nats.NewMsg(g.subjects.Intent(in.MgID, in.RoomID))
	m.Data = data
	m.Header.Set(events.HeaderMsgID, id)
	return m
}
