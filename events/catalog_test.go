package events

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// seedGames is the table of sud-create-order-api.md, typed in again by
// hand so that the catalog is checked against the seed, not against itself.
var seedGames = []struct {
	mgID string
	cmds []string
}{
	{"1557194155570024449", []string{"add_score"}},                                                                // 德州扑克专业版
	{"1557194487352053761", []string{"add_score"}},                                                                // TeenPatti专业版
	{"1559736844916183041", []string{"gift"}},                                                                     // 太空杀
	{"1583284410804244481", []string{"buy_component", "fire_model"}},                                              // 定制火箭
	{"1472142747708284929", []string{"buy_role"}},                                                                 // 狼人杀
	{"1594978084509368321", []string{"buy_baseball", "buy_combo_baseball"}},                                       // 棒球
	{"1599672757949743105", []string{"buy_props"}},                                                                // 谁是卧底
	{"1468180338417074177", []string{"reroll_the_dice", "specify_dice_roll"}},                                     // 飞行棋
	{"1472142559912517633", []string{"auto_umo"}},                                                                 // UMO
	{"1472142640866779138", []string{"change_hand"}},                                                              // 排雷兵
	{"1649319572314173442", []string{"add_score"}},                                                                // 疯狂赛车
	{"1641329941723648002", []string{"add_score"}},                                                                // 777
	{"1676069429630722049", []string{"retract"}},                                                                  // 五子棋专业版
	{"1680881367829176322", []string{"hit", "addHeart"}},                                                          // 跳一跳
	{"1704460412809043970", append([]string{"chess_skins_1", "chess_skins_2", "chess_skins_3"}, paidEvents()...)}, // 大富翁
	{"1716668321022017537", []string{"reroll", "shield"}},                                                         // 蛇梯
	{"1734504890293981185", []string{"refresh", "prompt", "cloud", "lock", "use_cloud", "use_wind", "use_lock",
		"use_unlock", "use_rocket", "item_event_use_refresh", "item_event_use_prompt", "item_event_use_cloud",
		"item_event_use_lock"}}, // 连连看
	{"1759471374694019074", []string{"buy_props"}},                                          // 巴洛特
	{"1641330097642704898", []string{"add_score"}},                                          // 大胃王
	{"1800792634548629505", []string{"clear_line", "add_line", "decelerate", "accelerate"}}, // 方块大师
}

func paidEvents() []string {
	var out []string
	for i := 1; i <= 20; i++ {
		out = append(out, "paid_events_"+strconv.Itoa(i))
	}
	return out
}

func TestEmbeddedCatalogHoldsEveryGameAndCmdOfTheSeed(t *testing.T) {
	c := DefaultCatalog()
	if got := len(c.Games()); got != len(seedGames) {
		t.Errorf("catalog has %d games, the seed %d", got, len(seedGames))
	}
	for _, sg := range seedGames {
		g, ok := c.Game(sg.mgID)
		if !ok {
			t.Errorf("game %s of the seed is missing", sg.mgID)
			continue
		}
		if g.Name == "" {
			t.Errorf("game %s has no name", sg.mgID)
		}
		var have []string
		for _, cmd := range g.Commands {
			have = append(have, cmd.Cmd)
		}
		if !slices.Equal(have, sg.cmds) {
			t.Errorf("game %s (%s): cmds %v, the seed says %v", sg.mgID, g.Name, have, sg.cmds)
		}
	}
}

func TestLoadCatalogOfTheEmbeddedFileSucceeds(t *testing.T) {
	// DefaultCatalog panics on a broken file; this turns that into a test
	// failure that names the problem.
	if _, err := LoadCatalog(strings.NewReader(string(catalogJSON))); err != nil {
		t.Fatal(err)
	}
}

func TestCheckCommand(t *testing.T) {
	const (
		texas    = "1557194155570024449"
		teen     = "1557194487352053761"
		space    = "1559736844916183041"
		rocket   = "1583284410804244481"
		wolf     = "1472142747708284929"
		baseball = "1594978084509368321"
		spy      = "1599672757949743105"
		ludo     = "1468180338417074177"
		umo      = "1472142559912517633"
		mines    = "1472142640866779138"
		racing   = "1649319572314173442"
		slots    = "1641329941723648002"
		gomoku   = "1676069429630722049"
		jump     = "1680881367829176322"
		monopoly = "1704460412809043970"
		snakes   = "1716668321022017537"
		pairs    = "1734504890293981185"
		baloot   = "1759471374694019074"
		eater    = "1641330097642704898"
		blocks   = "1800792634548629505"
	)
	tests := []struct {
		name      string
		mgID, cmd string
		value     int32
		payload   string
		wantField string // "" means accepted
	}{
		{"an unknown game is left to the generic checks", "1461228379255603251", "anything", -5, `[1]`, ""},

		{"texas add_score with a positive value passes", texas, "add_score", 100, "", ""},
		{"texas add_score with value 0 is refused", texas, "add_score", 0, "", "value"},
		{"texas refuses a cmd it does not sell", texas, "gift", 1, "", "cmd"},
		{"teenpatti add_score passes", teen, "add_score", 2147483647, "", ""},
		{"teenpatti add_score with a payload key is refused", teen, "add_score", 1, `{"betChip":1}`, "payload.betChip"},

		{"space gift of 10 (5 votes) passes", space, "gift", 10, "", ""},
		{"space gift of 11 is refused", space, "gift", 11, "", "value"},
		{"space gift of 0 is refused", space, "gift", 0, "", "value"},

		{"rocket buy_component passes", rocket, "buy_component", 50, "", ""},
		{"rocket fire_model with an empty payload object passes", rocket, "fire_model", 50, `{}`, ""},
		{"rocket fire_model with a null payload passes", rocket, "fire_model", 50, `null`, ""},
		{"rocket fire_model with a payload array is refused", rocket, "fire_model", 50, `[]`, "payload"},

		{"werewolf buy_role with role_id 6 passes", wolf, "buy_role", 10, `{"role_id":6}`, ""},
		{"werewolf buy_role without payload is refused", wolf, "buy_role", 10, "", "payload.role_id"},
		{"werewolf buy_role with role_id 7 is refused", wolf, "buy_role", 10, `{"role_id":7}`, "payload.role_id"},
		{"werewolf buy_role with role_id 0 is refused", wolf, "buy_role", 10, `{"role_id":0}`, "payload.role_id"},
		{"werewolf buy_role with a string role_id is refused", wolf, "buy_role", 10, `{"role_id":"1"}`, "payload.role_id"},
		{"werewolf buy_role with a fractional role_id is refused", wolf, "buy_role", 10, `{"role_id":1.5}`, "payload.role_id"},
		{"werewolf buy_role with an extra key is refused", wolf, "buy_role", 10, `{"role_id":1,"x":1}`, "payload.x"},

		{"baseball buy_baseball without payload passes (is_add defaults to 0)", baseball, "buy_baseball", 3, "", ""},
		{"baseball buy_combo_baseball with is_add 1 passes", baseball, "buy_combo_baseball", 3, `{"is_add":1}`, ""},
		{"baseball buy_baseball with is_add 2 is refused", baseball, "buy_baseball", 3, `{"is_add":2}`, "payload.is_add"},

		{"undercover buy_props with index 1 passes", spy, "buy_props", 5, `{"index":1}`, ""},
		{"undercover buy_props with index 2 is refused", spy, "buy_props", 5, `{"index":2}`, "payload.index"},
		{"undercover buy_props without index is refused", spy, "buy_props", 5, `{}`, "payload.index"},

		{"ludo reroll_the_dice with seq passes", ludo, "reroll_the_dice", 100, `{"seq":1}`, ""},
		{"ludo reroll_the_dice without seq is refused", ludo, "reroll_the_dice", 100, `{}`, "payload.seq"},
		{"ludo reroll_the_dice with point is refused", ludo, "reroll_the_dice", 100, `{"seq":1,"point":3}`, "payload.point"},
		{"ludo specify_dice_roll with point and seq passes", ludo, "specify_dice_roll", 100, `{"point":6, "seq": 1}`, ""},
		{"ludo specify_dice_roll without point passes (random point)", ludo, "specify_dice_roll", 100, `{"seq":1}`, ""},
		{"ludo specify_dice_roll with point 7 is refused", ludo, "specify_dice_roll", 100, `{"point":7,"seq":1}`, "payload.point"},
		{"ludo specify_dice_roll with a negative seq is refused", ludo, "specify_dice_roll", 100, `{"point":1,"seq":-1}`, "payload.seq"},

		{"umo auto_umo passes", umo, "auto_umo", 1, "", ""},
		{"umo auto_umo with a negative value is refused", umo, "auto_umo", -1, "", "value"},

		{"minesweeper change_hand passes", mines, "change_hand", 20, "", ""},
		{"minesweeper change_hand with a payload key is refused", mines, "change_hand", 20, `{"seq":1}`, "payload.seq"},

		{"racing add_score with three bets passes", racing, "add_score", 40, `{"betChip":[20,20,0]}`, ""},
		{"racing add_score with two bets is refused", racing, "add_score", 40, `{"betChip":[20,20]}`, "payload.betChip"},
		{"racing add_score with a negative bet is refused", racing, "add_score", 40, `{"betChip":[20,-1,0]}`, "payload.betChip[1]"},
		{"racing add_score with a scalar bet is refused", racing, "add_score", 40, `{"betChip":500}`, "payload.betChip"},
		{"racing add_score without betChip is refused", racing, "add_score", 40, "", "payload.betChip"},

		{"slots add_score with an int bet passes", slots, "add_score", 500, `{"betChip":500}`, ""},
		{"slots add_score with an array bet is refused", slots, "add_score", 500, `{"betChip":[500]}`, "payload.betChip"},
		{"big eater add_score with an int bet passes", eater, "add_score", 500, `{"betChip":500}`, ""},
		{"big eater add_score with an out-of-int64 bet is refused", eater, "add_score", 500, `{"betChip":99999999999999999999}`, "payload.betChip"},

		{"gomoku retract passes", gomoku, "retract", 10, "", ""},
		{"gomoku retract with a payload string is refused", gomoku, "retract", 10, `"x"`, "payload"},

		{"jumpjump hit and addHeart pass", jump, "addHeart", 10, "", ""},
		{"jumpjump refuses an unknown cmd", jump, "jump", 10, "", "cmd"},

		{"monopoly chess_skins_1 with rounds and quality passes", monopoly, "chess_skins_1", 100, `{"rounds":5,"quality":4}`, ""},
		{"monopoly chess_skins_3 without payload passes (defaults)", monopoly, "chess_skins_3", 100, "", ""},
		{"monopoly paid_events_6 takes no rounds", monopoly, "paid_events_6", 100, `{"rounds":5,"quality":1}`, "payload.rounds"},
		{"monopoly paid_events_8 with rounds passes", monopoly, "paid_events_8", 100, `{"rounds":2,"quality":1}`, ""},
		{"monopoly paid_events_1 with rounds 0 is refused", monopoly, "paid_events_1", 100, `{"rounds":0}`, "payload.rounds"},
		{"monopoly paid_events_20 with point 12 passes", monopoly, "paid_events_20", 100, `{"point":12,"quality":3}`, ""},
		{"monopoly paid_events_20 with point 1 is refused", monopoly, "paid_events_20", 100, `{"point":1}`, "payload.point"},
		{"monopoly paid_events_20 with point 13 is refused", monopoly, "paid_events_20", 100, `{"point":13}`, "payload.point"},
		{"monopoly refuses paid_events_21", monopoly, "paid_events_21", 100, "", "cmd"},

		{"snakes reroll passes", snakes, "reroll", 10, "", ""},
		{"snakes shield with value 0 is refused", snakes, "shield", 0, "", "value"},

		{"matchpairs item_event_use_lock passes", pairs, "item_event_use_lock", 10, "", ""},
		{"matchpairs use_fire does not exist", pairs, "use_fire", 10, "", "cmd"},

		{"baloot buy_props with index 0 passes", baloot, "buy_props", 5, `{"index":0}`, ""},
		{"baloot buy_props with index -1 is refused", baloot, "buy_props", 5, `{"index":-1}`, "payload.index"},

		{"block master accelerate passes", blocks, "accelerate", 10, "", ""},
		{"block master clear_line with a payload is refused", blocks, "clear_line", 10, `{"lines":1}`, "payload.lines"},
	}
	c := DefaultCatalog()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var payload json.RawMessage
			if tt.payload != "" {
				payload = json.RawMessage(tt.payload)
			}
			wantInvalid(t, c.CheckCommand(tt.mgID, tt.cmd, tt.value, payload), tt.wantField)
		})
	}

	t.Run("every cmd of every game accepts its own minimal valid request", func(t *testing.T) {
		for _, g := range c.Games() {
			for _, cmd := range g.Commands {
				obj := map[string]any{}
				for _, f := range cmd.Payload {
					if !f.Required {
						continue
					}
					v := any(lowest(f))
					if f.Type == FieldIntArray {
						arr := make([]int64, f.Length)
						for i := range arr {
							arr[i] = lowest(f)
						}
						v = arr
					}
					obj[f.Name] = v
				}
				payload, _ := json.Marshal(obj)
				if err := c.CheckCommand(g.MgID, cmd.Cmd, cmd.Value.Min, payload); err != nil {
					t.Errorf("%s %s: %v", g.Name, cmd.Cmd, err)
				}
				if err := c.CheckCommand(g.MgID, cmd.Cmd, cmd.Value.Max, payload); err != nil {
					t.Errorf("%s %s: %v", g.Name, cmd.Cmd, err)
				}
				if cmd.Value.Min > 0 {
					if err := c.CheckCommand(g.MgID, cmd.Cmd, cmd.Value.Min-1, payload); err == nil {
						t.Errorf("%s %s: value %d below the range passed", g.Name, cmd.Cmd, cmd.Value.Min-1)
					}
				}
			}
		}
	})
}

func lowest(f PayloadField) int64 {
	if len(f.Values) > 0 {
		return f.Values[0]
	}
	return *f.Min
}

func TestApplyDefaults(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		name      string
		mgID, cmd string
		payload   string
		want      string
	}{
		{"baseball without payload gets is_add 0", "1594978084509368321", "buy_baseball", "", `{"is_add":0}`},
		{"monopoly paid_events_4 gets rounds 3 and quality 3", "1704460412809043970", "paid_events_4", `{}`, `{"quality":3,"rounds":3}`},
		{"monopoly chess_skins_3 keeps a given rounds", "1704460412809043970", "chess_skins_3", `{"rounds":9}`, `{"quality":4,"rounds":9}`},
		{"monopoly paid_events_20 gets quality but no point", "1704460412809043970", "paid_events_20", "", `{"quality":3}`},
		{"ludo specify_dice_roll has nothing to add", "1468180338417074177", "specify_dice_roll", `{"seq":1}`, `{"seq":1}`},
		{"a game without payload stays without", "1557194155570024449", "add_score", "", ``},
		{"an unknown game's payload is untouched", "42", "x", `{"a":1}`, `{"a":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var payload json.RawMessage
			if tt.payload != "" {
				payload = json.RawMessage(tt.payload)
			}
			got, err := c.ApplyDefaults(tt.mgID, tt.cmd, 1, payload)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
	t.Run("an invalid payload is refused, not completed", func(t *testing.T) {
		if _, err := c.ApplyDefaults("1594978084509368321", "buy_baseball", 1, json.RawMessage(`{"is_add":5}`)); err == nil {
			t.Fatal("want an error")
		}
	})
}

func TestLoadCatalogRefusesInconsistentData(t *testing.T) {
	tests := []struct {
		name, json, wantErr string
	}{
		{"not JSON", `{`, "decode catalog"},
		{"an unknown key (a typo in a field name)", `{"games":[{"mg_id":"1","name":"a","commands":[{"cmd":"c","value":{"min":1,"max":2},"paylod":[]}]}]}`, "unknown field"},
		{"a game without commands", `{"games":[{"mg_id":"1","name":"a","commands":[]}]}`, "no commands"},
		{"an mg_id that is not a subject token", `{"games":[{"mg_id":"a.b","name":"a","commands":[{"cmd":"c","value":{"min":1,"max":2}}]}]}`, "safe subject token"},
		{"a duplicate mg_id", `{"games":[{"mg_id":"1","commands":[{"cmd":"c","value":{"min":1,"max":2}}]},{"mg_id":"1","commands":[{"cmd":"c","value":{"min":1,"max":2}}]}]}`, "duplicate mg_id"},
		{"a duplicate cmd", `{"games":[{"mg_id":"1","commands":[{"cmd":"c","value":{"min":1,"max":2}},{"cmd":"c","value":{"min":1,"max":2}}]}]}`, "duplicate cmd"},
		{"an empty value range", `{"games":[{"mg_id":"1","commands":[{"cmd":"c","value":{"min":3,"max":2}}]}]}`, "value range"},
		{"a value above int32", `{"games":[{"mg_id":"1","commands":[{"cmd":"c","value":{"min":1,"max":2147483648}}]}]}`, "decode catalog"},
		{"a field of unknown type", `{"games":[{"mg_id":"1","commands":[{"cmd":"c","value":{"min":1,"max":2},"payload":[{"name":"f","type":"string","min":1,"max":2}]}]}]}`, "unknown type"},
		{"an int field without bounds", `{"games":[{"mg_id":"1","commands":[{"cmd":"c","value":{"min":1,"max":2},"payload":[{"name":"f","type":"int"}]}]}]}`, "needs values or both"},
		{"a default outside the range", `{"games":[{"mg_id":"1","commands":[{"cmd":"c","value":{"min":1,"max":2},"payload":[{"name":"f","type":"int","values":[0,1],"default":2}]}]}]}`, "default 2"},
		{"a required field with a default", `{"games":[{"mg_id":"1","commands":[{"cmd":"c","value":{"min":1,"max":2},"payload":[{"name":"f","type":"int","required":true,"min":0,"max":1,"default":1}]}]}]}`, "required field cannot"},
		{"an int_array without a length", `{"games":[{"mg_id":"1","commands":[{"cmd":"c","value":{"min":1,"max":2},"payload":[{"name":"f","type":"int_array","min":0,"max":1}]}]}]}`, "positive length"},
		{"two fields of the same name", `{"games":[{"mg_id":"1","commands":[{"cmd":"c","value":{"min":1,"max":2},"payload":[{"name":"f","type":"int","min":0,"max":1},{"name":"f","type":"int","min":0,"max":1}]}]}]}`, "duplicate payload field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadCatalog(strings.NewReader(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
