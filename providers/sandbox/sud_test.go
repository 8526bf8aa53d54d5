package sandbox_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers/sandbox"
)

// stubGames knows one game, 1468180338417074177, with one cmd whose payload
// must carry a point.
type stubGames struct{}

func (stubGames) CheckCommand(mgID, cmd string, value int32, payload json.RawMessage) error {
	if mgID != "1468180338417074177" {
		return nil
	}
	if cmd != "specify_dice_roll" {
		return errors.New("unknown cmd")
	}
	var p struct {
		Point *int `json:"point"`
	}
	if err := json.Unmarshal(payload, &p); err != nil || p.Point == nil || value <= 0 {
		return errors.New("payload or value out of shape")
	}
	return nil
}

type createData struct {
	OutOrderID string `json:"out_order_id"`
	OrderID    string `json:"order_id"`
	Status     string `json:"status"`
	MgID       string `json:"mg_id"`
	Value      int32  `json:"value"`
}

func dataOf(t *testing.T, r sudResp) createData {
	t.Helper()
	var d createData
	if err := json.Unmarshal(r.Data, &d); err != nil {
		t.Fatalf("data %s: %v", r.Data, err)
	}
	return d
}

func TestSUDDiscovery(t *testing.T) {
	e := newEnv(t)
	mac := hmac.New(md5.New, []byte(e.cfg.SUDAppSecret))
	mac.Write([]byte(e.cfg.SUDAppID))
	key := hex.EncodeToString(mac.Sum(nil))

	t.Run("the app's key answers the endpoints on the request's host", func(t *testing.T) {
		resp, err := http.Get(e.srv.URL + "/sud/asc/" + key)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			API map[string]string `json:"api"`
		}
		decodeReply(t, resp, &out)
		if out.API["create_order"] != e.srv.URL+"/sud/create_order" || out.API["query_order"] != e.srv.URL+"/sud/query_order" {
			t.Fatalf("api = %v", out.API)
		}
	})

	t.Run("another key is not found", func(t *testing.T) {
		resp, err := http.Get(e.srv.URL + "/sud/asc/" + strings.Repeat("0", 32))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	})
}

func TestSUDCreateOrder(t *testing.T) {
	t.Run("a valid order is created, executed, and listed", func(t *testing.T) {
		e := newEnv(t)
		r := e.sud("/sud/create_order", validOrder("o-1"))
		d := dataOf(t, r)
		if r.RetCode != 0 || r.RetMsg != "" || d.OutOrderID != "o-1" || d.OrderID == "" {
			t.Fatalf("reply = %+v data %+v", r, d)
		}
		if got := e.sb.SUDOrders(); len(got) != 1 || got[0] != (sandbox.SUDOrder{OutOrderID: "o-1", OrderID: d.OrderID, Status: "EXECUTE_SUCCESS"}) {
			t.Fatalf("orders = %+v", got)
		}
	})

	t.Run("the seed's own example with an unknown game passes the generic checks", func(t *testing.T) {
		e := newEnv(t, func(c *sandbox.Config) { c.Games = stubGames{} })
		r := e.sud("/sud/create_order", map[string]any{
			"out_order_id": "1659497694000", "out_group_id": "1659497694", "mg_id": "1461228379255603251",
			"room_id": "9009", "cmd": "add_score", "from_uid": "001", "to_uid": "002", "value": 100,
		})
		if r.RetCode != 0 {
			t.Fatalf("reply = %+v", r)
		}
	})

	t.Run("a repeated out_order_id is refused with 70501 and keeps the first order", func(t *testing.T) {
		e := newEnv(t)
		first := dataOf(t, e.sud("/sud/create_order", validOrder("o-1")))
		if r := e.sud("/sud/create_order", validOrder("o-1")); r.RetCode != 70501 {
			t.Fatalf("reply = %+v", r)
		}
		if got := e.sb.SUDOrders(); len(got) != 1 || got[0].OrderID != first.OrderID {
			t.Fatalf("orders = %+v", got)
		}
	})

	refusals := []struct {
		name  string
		edit  func(map[string]any)
		games bool
	}{
		{"a missing out_order_id", func(o map[string]any) { delete(o, "out_order_id") }, false},
		{"an empty mg_id", func(o map[string]any) { o["mg_id"] = "" }, false},
		{"a missing room_id", func(o map[string]any) { delete(o, "room_id") }, false},
		{"a missing cmd", func(o map[string]any) { delete(o, "cmd") }, false},
		{"a missing from_uid", func(o map[string]any) { delete(o, "from_uid") }, false},
		{"a missing to_uid", func(o map[string]any) { delete(o, "to_uid") }, false},
		{"a missing value", func(o map[string]any) { delete(o, "value") }, false},
		{"a value beyond int32", func(o map[string]any) { o["value"] = int64(1) << 31 }, false},
		{"a value of the wrong type", func(o map[string]any) { o["value"] = "100" }, false},
		{"an out_order_id of 65 characters", func(o map[string]any) { o["out_order_id"] = strings.Repeat("x", 65) }, false},
		{"an out_group_id of 65 characters", func(o map[string]any) { o["out_group_id"] = strings.Repeat("x", 65) }, false},
		{"a payload that is not an object", func(o map[string]any) { o["payload"] = []int{1} }, false},
		{"a known game's unknown cmd", func(o map[string]any) { o["cmd"] = "fly" }, true},
		{"a known game's payload out of shape", func(o map[string]any) { o["payload"] = map[string]any{"seq": 1} }, true},
		{"a known game's value out of shape", func(o map[string]any) { o["value"] = 0 }, true},
	}
	for _, tc := range refusals {
		t.Run(tc.name+" is a parameter error", func(t *testing.T) {
			e := newEnv(t, func(c *sandbox.Config) {
				if tc.games {
					c.Games = stubGames{}
				}
			})
			o := validOrder("o-1")
			tc.edit(o)
			if r := e.sud("/sud/create_order", o); r.RetCode != 10002 || r.RetMsg == "" {
				t.Fatalf("reply = %+v", r)
			}
			if n := len(e.sb.SUDOrders()); n != 0 {
				t.Fatalf("%d orders after a refusal", n)
			}
		})
	}

	t.Run("an out_order_id of exactly 64 characters is accepted", func(t *testing.T) {
		e := newEnv(t)
		if r := e.sud("/sud/create_order", validOrder(strings.Repeat("x", 64))); r.RetCode != 0 {
			t.Fatalf("reply = %+v", r)
		}
	})

	t.Run("a body that is not JSON is a parameter error", func(t *testing.T) {
		e := newEnv(t)
		body := []byte(`{"out_order_id":`)
		if r := e.sudWith("/sud/create_order", body, e.sudAuthHeader(e.cfg.SUDAppID, e.cfg.SUDAppSecret, body)); r.RetCode != 10002 {
			t.Fatalf("reply = %+v", r)
		}
	})
}

func TestSUDAuth(t *testing.T) {
	body, _ := json.Marshal(validOrder("o-1"))
	cases := []struct {
		name string
		auth func(e *env) string
		code int
	}{
		{"no Authorization header is an invalid app key", func(*env) string { return "" }, 10003},
		{"another scheme is an invalid app key", func(*env) string { return "Bearer x" }, 10003},
		{"an unknown app_id is an invalid app key", func(e *env) string { return e.sudAuthHeader("other-app", e.cfg.SUDAppSecret, body) }, 10003},
		{"a signature made with another secret is an invalid app secret", func(e *env) string { return e.sudAuthHeader(e.cfg.SUDAppID, "guess", body) }, 10004},
		{"a signature over other bytes is an invalid app secret", func(e *env) string {
			return e.sudAuthHeader(e.cfg.SUDAppID, e.cfg.SUDAppSecret, append([]byte(" "), body...))
		}, 10004},
		{"an upper-case hex signature is an invalid app secret", func(e *env) string {
			h := e.sudAuthHeader(e.cfg.SUDAppID, e.cfg.SUDAppSecret, body)
			i := strings.Index(h, `signature="`) + len(`signature="`)
			return h[:i] + strings.ToUpper(h[i:len(h)-1]) + `"`
		}, 10004},
	}
	at := func(d time.Duration) func(e *env) string {
		return func(e *env) string {
			ts := strconv.FormatInt(e.clock.Now().Add(d).Unix(), 10)
			return sudAuthHeaderAt(e.cfg.SUDAppID, e.cfg.SUDAppSecret, ts, body)
		}
	}
	cases = append(cases, []struct {
		name string
		auth func(e *env) string
		code int
	}{
		{"a timestamp five minutes old is still accepted", at(-5 * time.Minute), 0},
		{"a timestamp five minutes ahead is still accepted", at(5 * time.Minute), 0},
		{"a timestamp older than five minutes is refused as an invalid app secret", at(-5*time.Minute - time.Second), 10004},
		{"a timestamp more than five minutes ahead is refused as an invalid app secret", at(5*time.Minute + time.Second), 10004},
		{"a timestamp in milliseconds is refused as an invalid app secret", func(e *env) string {
			return sudAuthHeaderAt(e.cfg.SUDAppID, e.cfg.SUDAppSecret, strconv.FormatInt(e.clock.Now().UnixMilli(), 10), body)
		}, 10004},
		{"a timestamp that is not a number is refused as an invalid app secret", func(e *env) string {
			return sudAuthHeaderAt(e.cfg.SUDAppID, e.cfg.SUDAppSecret, "now", body)
		}, 10004},
	}...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := e.sudWith("/sud/create_order", body, tc.auth(e))
			if r.RetCode != tc.code {
				t.Fatalf("reply = %+v, want %d", r, tc.code)
			}
			if tc.code != 0 && len(e.sb.SUDOrders()) != 0 {
				t.Fatal("an unauthenticated call created an order")
			}
		})
	}
}

func TestSUDContentType(t *testing.T) {
	body, _ := json.Marshal(validOrder("o-1"))
	cases := []struct {
		name        string
		contentType string
		code        int
	}{
		{"the documented application/json;charset=utf-8 is accepted", "application/json;charset=utf-8", 0},
		{"application/json without a charset is accepted", "application/json", 0},
		{"a spaced, upper-case charset is the same type", "application/json; charset=UTF-8", 0},
		{"no Content-Type is a parameter error", "", 10002},
		{"a form Content-Type is a parameter error", "application/x-www-form-urlencoded", 10002},
		{"text/plain is a parameter error", "text/plain;charset=utf-8", 10002},
		{"JSON in another charset is a parameter error", "application/json;charset=gbk", 10002},
		{"an unparsable Content-Type is a parameter error", "application/json;;=", 10002},
	}
	for _, tc := range cases {
		for _, path := range []string{"/sud/create_order", "/sud/query_order"} {
			t.Run(tc.name+" on "+path, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				b := body
				if path == "/sud/query_order" {
					e.sud("/sud/create_order", validOrder("o-1"))
					b = []byte(`{"out_order_id":"o-1"}`)
				}
				req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				if tc.contentType != "" {
					req.Header.Set("Content-Type", tc.contentType)
				}
				req.Header.Set("Authorization", e.sudAuthHeader(e.cfg.SUDAppID, e.cfg.SUDAppSecret, b))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var r sudResp
				decodeReply(t, resp, &r)
				if r.RetCode != tc.code {
					t.Fatalf("reply = %+v, want %d", r, tc.code)
				}
				if tc.code != 0 && path == "/sud/create_order" && len(e.sb.SUDOrders()) != 0 {
					t.Fatal("a refused create_order made an order")
				}
			})
		}
	}
}

func TestSUDQueryOrder(t *testing.T) {
	e := newEnv(t)
	created := dataOf(t, e.sud("/sud/create_order", validOrder("o-1")))

	t.Run("by out_order_id it answers the order and its status", func(t *testing.T) {
		r := e.sud("/sud/query_order", map[string]string{"out_order_id": "o-1"})
		d := dataOf(t, r)
		if r.RetCode != 0 || d.OrderID != created.OrderID || d.Status != "EXECUTE_SUCCESS" || d.MgID != "1468180338417074177" || d.Value != 100 {
			t.Fatalf("reply = %+v data %+v", r, d)
		}
	})

	t.Run("by order_id it answers the same order", func(t *testing.T) {
		d := dataOf(t, e.sud("/sud/query_order", map[string]string{"order_id": created.OrderID}))
		if d.OutOrderID != "o-1" {
			t.Fatalf("data = %+v", d)
		}
	})

	t.Run("an unknown order is 70503", func(t *testing.T) {
		if r := e.sud("/sud/query_order", map[string]string{"out_order_id": "o-2"}); r.RetCode != 70503 {
			t.Fatalf("reply = %+v", r)
		}
		if r := e.sud("/sud/query_order", map[string]string{"order_id": "42"}); r.RetCode != 70503 {
			t.Fatalf("reply = %+v", r)
		}
	})

	t.Run("neither id is a parameter error", func(t *testing.T) {
		if r := e.sud("/sud/query_order", map[string]string{}); r.RetCode != 10002 {
			t.Fatalf("reply = %+v", r)
		}
	})

	t.Run("a query checks the signature too", func(t *testing.T) {
		b := []byte(`{"out_order_id":"o-1"}`)
		if r := e.sudWith("/sud/query_order", b, e.sudAuthHeader(e.cfg.SUDAppID, "guess", b)); r.RetCode != 10004 {
			t.Fatalf("reply = %+v", r)
		}
	})
}
