package sud_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers/sud"
)

// notifyAt is the receiver's clock in the handler tests.
var notifyAt = time.Unix(1790000000, 0)

const notifyBody = `{"notify_id":"0795d77f85789da0eb387a5096","notify_time":"1789999999500","app_id":"` + appID + `",` +
	`"notify_event":"sud.mg.merchant.order.changed","data":{"order_id":"1659497694888","out_order_id":"1659497694000",` +
	`"out_group_id":"1659497694","mg_id":"1468180338417074177","room_id":"9009","round_id":"r1","cmd":"specify_dice_roll",` +
	`"from_uid":"001","to_uid":"002","value":100,"seq":0,"payload":{"point":6,"seq":1},"status":"EXECUTE_SUCCESS"}}`

// notifyReq is a notification signed by the test's own signer; the zero
// value is notifyBody, signed right, at notifyAt.
type notifyReq struct {
	method string
	body   string            // signed
	sent   string            // sent instead of body, when set
	header map[string]string // set after signing; "" deletes
	sig    func(string) string
	secret string
	ts     string
}

func (n notifyReq) build(t *testing.T, url string) *http.Request {
	t.Helper()
	method, body, secret, ts := n.method, n.body, n.secret, n.ts
	if method == "" {
		method = http.MethodPost
	}
	if body == "" {
		body = notifyBody
	}
	if secret == "" {
		secret = appSecret
	}
	if ts == "" {
		ts = strconv.FormatInt(notifyAt.Unix(), 10)
	}
	nonce := "keVJLJTItd1VBtGT"
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(appID + "\n" + ts + "\n" + nonce + "\n" + body + "\n"))
	sig := hex.EncodeToString(mac.Sum(nil))
	if n.sig != nil {
		sig = n.sig(sig)
	}
	if n.sent != "" {
		body = n.sent
	}
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json;charset=utf-8")
	req.Header.Set("Sud-AppId", appID)
	req.Header.Set("Sud-Timestamp", ts)
	req.Header.Set("Sud-Nonce", nonce)
	req.Header.Set("Sud-Signature", sig)
	for k, v := range n.header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return req
}

// receiver is a NotifyHandler on a test server that records what it passed on.
type receiver struct {
	srv  *httptest.Server
	logs *bytes.Buffer

	mu   sync.Mutex
	got  []sud.Notification
	fail error // onChange's answer
}

func newReceiver(t *testing.T, cfg sud.NotifyConfig) *receiver {
	t.Helper()
	rc := &receiver{logs: &bytes.Buffer{}}
	var logMu sync.Mutex
	cfg.Logger = slog.New(slog.NewTextHandler(lockedWriter{&logMu, rc.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rc.srv = httptest.NewServer(sud.NotifyHandler(cfg, func(ctx context.Context, n sud.Notification) error {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.fail != nil {
			return rc.fail
		}
		rc.got = append(rc.got, n)
		return nil
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) notifications() []sud.Notification {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]sud.Notification(nil), rc.got...)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestNotifyHandler(t *testing.T) {
	t.Parallel()
	cfg := sud.NotifyConfig{AppID: appID, AppSecret: appSecret, Now: func() time.Time { return notifyAt }}
	wantOrder := sud.Order{OutOrderID: "1659497694000", OrderID: "1659497694888", Status: sud.StatusExecuteSuccess,
		OutGroupID: "1659497694", MgID: "1468180338417074177", RoomID: "9009", Cmd: "specify_dice_roll",
		FromUID: "001", ToUID: "002", Value: 100, Payload: `{"point":6,"seq":1}`}
	success := `{"ret_code":0,"ret_msg":"SUCCESS"}`

	accepted := []struct {
		name string
		req  notifyReq
	}{
		{"a signed notification in seconds is passed on and answered exactly SUCCESS", notifyReq{}},
		{"a Sud-Timestamp in milliseconds is read as milliseconds", notifyReq{ts: strconv.FormatInt(notifyAt.UnixMilli(), 10)}},
		{"a timestamp just inside the skew is accepted", notifyReq{ts: strconv.FormatInt(notifyAt.Add(-5*time.Minute).Unix(), 10)}},
		{"an upper-case hex signature is the same signature", notifyReq{sig: strings.ToUpper}},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, cfg)
			status, body := do(t, tc.req.build(t, rc.srv.URL))
			if status != http.StatusOK || body != success {
				t.Fatalf("answer = %d %s", status, body)
			}
			got := rc.notifications()
			if len(got) != 1 {
				t.Fatalf("%d notifications passed on", len(got))
			}
			n := got[0]
			if n.NotifyID != "0795d77f85789da0eb387a5096" || n.AppID != appID || n.Event != sud.EventOrderChanged ||
				!n.NotifyTime.Equal(time.UnixMilli(1789999999500)) || n.Order != wantOrder {
				t.Errorf("notification = %+v", n)
			}
		})
	}

	refused := []struct {
		name   string
		req    notifyReq
		status int
	}{
		{"a notification without Sud-Signature is refused", notifyReq{header: map[string]string{"Sud-Signature": ""}}, 401},
		{"a notification without Sud-Nonce is refused", notifyReq{header: map[string]string{"Sud-Nonce": ""}}, 401},
		{"a notification without Sud-Timestamp is refused", notifyReq{header: map[string]string{"Sud-Timestamp": ""}}, 401},
		{"a notification without Sud-AppId is refused", notifyReq{header: map[string]string{"Sud-AppId": ""}}, 401},
		{"a notification for another app id is refused", notifyReq{header: map[string]string{"Sud-AppId": "other-app"}}, 401},
		{"a notification signed with another secret is refused", notifyReq{secret: "guess"}, 401},
		{"a body changed after signing is refused", notifyReq{sent: strings.Replace(notifyBody, "EXECUTE_SUCCESS", "EXECUTE_FAIL", 1)}, 401},
		{"a nonce changed after signing is refused", notifyReq{header: map[string]string{"Sud-Nonce": "another-nonce"}}, 401},
		{"a signature that is not hex is refused", notifyReq{header: map[string]string{"Sud-Signature": "zz"}}, 401},
		{"a timestamp six minutes old is refused", notifyReq{ts: strconv.FormatInt(notifyAt.Add(-6*time.Minute).Unix(), 10)}, 401},
		{"a timestamp six minutes ahead is refused", notifyReq{ts: strconv.FormatInt(notifyAt.Add(6*time.Minute).Unix(), 10)}, 401},
		{"a timestamp that is not a number is refused", notifyReq{ts: "yesterday"}, 401},
		{"a GET is refused", notifyReq{method: http.MethodGet}, 405},
		{"a body that is not JSON is refused", notifyReq{body: `{"notify_id":`}, 400},
		{"an order without ids is refused", notifyReq{body: `{"notify_event":"sud.mg.merchant.order.changed","data":{"status":"EXECUTE_SUCCESS"}}`}, 400},
		{"an order without data is refused", notifyReq{body: `{"notify_event":"sud.mg.merchant.order.changed"}`}, 400},
		{"an unknown status is refused", notifyReq{body: strings.Replace(notifyBody, "EXECUTE_SUCCESS", "DONE", 1)}, 400},
		{"a body addressed to another app is refused", notifyReq{body: strings.Replace(notifyBody, `"app_id":"`+appID, `"app_id":"other`, 1)}, 400},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, cfg)
			req := tc.req.build(t, rc.srv.URL)
			status, body := do(t, req)
			if status != tc.status {
				t.Fatalf("answer = %d %s, want HTTP %d", status, body, tc.status)
			}
			var e struct {
				RetCode *int   `json:"ret_code"`
				RetMsg  string `json:"ret_msg"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.RetCode == nil || *e.RetCode == 0 || e.RetMsg == "" {
				t.Errorf("answer %q is not a JSON error", body)
			}
			if n := len(rc.notifications()); n != 0 {
				t.Errorf("%d notifications passed on", n)
			}
			sig := req.Header.Get("Sud-Signature")
			if logs := rc.logs.String(); strings.Contains(logs, appSecret) || (len(sig) > 8 && strings.Contains(logs, sig)) {
				t.Errorf("the log holds the secret or the signature:\n%s", logs)
			}
		})
	}

	t.Run("a failing onChange is answered non-success so that SUD retries", func(t *testing.T) {
		t.Parallel()
		rc := newReceiver(t, cfg)
		rc.mu.Lock()
		rc.fail = errors.New("store unavailable")
		rc.mu.Unlock()
		status, body := do(t, notifyReq{}.build(t, rc.srv.URL))
		if status != http.StatusInternalServerError || body == success || strings.Contains(body, "store unavailable") {
			t.Fatalf("answer = %d %s", status, body)
		}
	})

	t.Run("another event is acknowledged and not passed on", func(t *testing.T) {
		t.Parallel()
		rc := newReceiver(t, cfg)
		b := `{"notify_id":"n","notify_time":"1","app_id":"` + appID + `","notify_event":"sud.mg.merchant.room.users.changed","data":{"room_id":"9009"}}`
		status, body := do(t, notifyReq{body: b}.build(t, rc.srv.URL))
		if status != http.StatusOK || body != success {
			t.Fatalf("answer = %d %s", status, body)
		}
		if n := len(rc.notifications()); n != 0 {
			t.Errorf("%d notifications passed on", n)
		}
	})

	t.Run("a receiver without credentials cannot be made", func(t *testing.T) {
		t.Parallel()
		defer func() {
			if recover() == nil {
				t.Error("NotifyHandler accepted an empty secret")
			}
		}()
		sud.NotifyHandler(sud.NotifyConfig{AppID: appID}, func(context.Context, sud.Notification) error { return nil })
	})
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
