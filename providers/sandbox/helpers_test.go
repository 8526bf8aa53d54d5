package sandbox_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/internal/testclock"
	"github.com/coinsaga/coinsaga/providers/providertest"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

// clock is a settable Config.Now, so tests move time instead of sleeping.
type clock = testclock.Clock

func newClock() *clock { return testclock.New(testclock.Start) }

type env struct {
	t     *testing.T
	sb    *sandbox.Sandbox
	srv   *httptest.Server
	clock *clock
	cfg   sandbox.Config
}

func newEnv(t *testing.T, mutate ...func(*sandbox.Config)) *env {
	t.Helper()
	clk := newClock()
	cfg := sandbox.DefaultConfig()
	cfg.Seed = 42
	cfg.Now = clk.Now
	for _, m := range mutate {
		m(&cfg)
	}
	sb := sandbox.New(cfg)
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	return &env{t: t, sb: sb, srv: srv, clock: clk, cfg: cfg}
}

func (e *env) account(provider, appid, openid string) sandbox.AccountView {
	e.t.Helper()
	v, ok := e.sb.Account(provider, appid, openid)
	if !ok {
		e.t.Fatalf("account %s/%s/%s does not exist", provider, appid, openid)
	}
	return v
}

// ---- MOGS ----

type mogsResp struct {
	Ret         int    `json:"ret"`
	ErrMsg      string `json:"errmsg"`
	Balance     int64  `json:"balance"`
	GenBalance  int64  `json:"gen_balance"`
	IsFirst     bool   `json:"is_first"`
	SaveAmt     int64  `json:"save_amt"`
	SaveSum     int64  `json:"save_sum"`
	CostSum     int64  `json:"cost_sum"`
	PresentSums int64  `json:"present_sums"`
	BillNo      string `json:"bill_no"`
	UsedGenAmt  int64  `json:"used_gen_amt"`
}

// mogsQuery is a valid MOGS query for openid; set overrides, "" deletes.
func (e *env) mogsQuery(openid string, set map[string]string) url.Values {
	q := url.Values{"appid": {e.cfg.MOGSAppID}, "app_plat": {"1"}, "openid": {openid}, "js_code": {"code-" + openid}}
	for k, v := range set {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	return q
}

func (e *env) mogsRaw(endpoint string, q url.Values, body string) (*http.Response, error) {
	return http.Post(e.srv.URL+"/mogs/"+endpoint+"?"+q.Encode(), "application/json", strings.NewReader(body))
}

func (e *env) mogs(endpoint, openid string, body map[string]any) mogsResp {
	e.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.mogsWith(endpoint, e.mogsQuery(openid, nil), string(b))
}

func (e *env) mogsWith(endpoint string, q url.Values, body string) mogsResp {
	e.t.Helper()
	resp, err := e.mogsRaw(endpoint, q, body)
	if err != nil {
		e.t.Fatalf("mogs %s: %v", endpoint, err)
	}
	var out mogsResp
	decodeReply(e.t, resp, &out)
	return out
}

func decodeReply(t *testing.T, resp *http.Response, out any) {
	t.Helper()
	if err := decodeInto(resp, out); err != nil {
		t.Fatal(err)
	}
}

// decodeInto is decodeReply for goroutines other than the test's own.
func decodeInto(resp *http.Response, out any) error {
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode %q: %w", raw, err)
	}
	return nil
}

// sendFrom sends req on c from a goroutine other than the test's own and
// decodes the reply into out. A failure is an error of the test, named by
// what, and false.
func sendFrom(t *testing.T, c *http.Client, req *http.Request, what string, out any) bool {
	resp, err := c.Do(req)
	if err == nil {
		err = decodeInto(resp, out)
	}
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return false
	}
	return true
}

// ---- Midas ----

type midasResp struct {
	Ret        int    `json:"ret"`
	Msg        string `json:"msg"`
	BillNo     string `json:"billno"`
	Balance    int64  `json:"balance"`
	GenBalance int64  `json:"gen_balance"`
	FirstSave  int    `json:"first_save"`
	SaveAmt    int64  `json:"save_amt"`
	GenExpire  int    `json:"gen_expire"`
	TSSList    []any  `json:"tss_list"`
	UsedGenAmt int64  `json:"used_gen_amt"`
}

// midasParams are valid common parameters for openid; set overrides, ""
// deletes.
func (e *env) midasParams(openid string, set map[string]string) map[string]string {
	p := map[string]string{
		"openid": openid, "openkey": "paytoken-" + openid, "appid": e.cfg.MidasAppID,
		"ts": strconv.FormatInt(e.sb.Now().Unix(), 10), "pf": "myapp_m_qq-00000000-android-00000000-ysdk", "pfkey": "pfkey-x",
		"zoneid": "1", "format": "json",
	}
	for k, v := range set {
		if v == "" {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	return p
}

type midasReq struct {
	path      string            // e.g. "/mpay/pay_m"
	params    map[string]string // signed unless sign is false
	cookies   map[string]string // nil = valid cookies for path; values are urlencoded
	rawCookie string            // when set, the Cookie header exactly
	sig       func(string) string
}

// midasCookie is a valid QQ session cookie header for path, urlencoded.
func midasCookie(path string) string {
	return "session_id=openid; session_type=kp_actoken; org_loc=" + url.QueryEscape(path)
}

func (e *env) midasDo(r midasReq) *http.Response {
	e.t.Helper()
	q := url.Values{}
	for k, v := range r.params {
		q.Set(k, v)
	}
	if _, ok := r.params["sig"]; !ok {
		sig := providertest.MidasSig(e.cfg.MidasAppKey, "/v3/r"+r.path, r.params)
		if r.sig != nil {
			sig = r.sig(sig)
		}
		q.Set("sig", sig)
	}
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+r.path+"?"+q.Encode(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	cookies := r.cookies
	if cookies == nil {
		cookies = map[string]string{"session_id": "openid", "session_type": "kp_actoken", "org_loc": r.path}
	}
	var parts []string
	for k, v := range cookies {
		parts = append(parts, k+"="+url.QueryEscape(v))
	}
	sort.Strings(parts)
	switch {
	case r.rawCookie != "":
		req.Header.Set("Cookie", r.rawCookie)
	case len(parts) > 0:
		req.Header.Set("Cookie", strings.Join(parts, "; "))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("midas %s: %v", r.path, err)
	}
	return resp
}

func (e *env) midas(path, openid string, extra map[string]string) midasResp {
	e.t.Helper()
	return e.midasReq(midasReq{path: path, params: e.midasParams(openid, extra)})
}

func (e *env) midasReq(r midasReq) midasResp {
	e.t.Helper()
	resp := e.midasDo(r)
	var out midasResp
	decodeReply(e.t, resp, &out)
	return out
}

// ---- SUD ----

type sudResp struct {
	RetCode int             `json:"ret_code"`
	RetMsg  string          `json:"ret_msg"`
	Data    json.RawMessage `json:"data"`
}

func testSudSign(secret, appID, ts, nonce string, body []byte) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(bytes.Join([][]byte{[]byte(appID), []byte(ts), []byte(nonce), body, nil}, []byte("\n")))
	return hex.EncodeToString(mac.Sum(nil))
}

// sudAuthHeader signs body at the sandbox's clock.
func (e *env) sudAuthHeader(appID, secret string, body []byte) string {
	return sudAuthHeaderAt(appID, secret, strconv.FormatInt(e.clock.Now().Unix(), 10), body)
}

func sudAuthHeaderAt(appID, secret, ts string, body []byte) string {
	nonce := "n0nce"
	return fmt.Sprintf(`Sud-Auth app_id="%s",timestamp="%s",nonce="%s",signature="%s"`, appID, ts, nonce, testSudSign(secret, appID, ts, nonce, body))
}

func (e *env) sudWith(path string, body []byte, auth string) sudResp {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json;charset=utf-8")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("sud %s: %v", path, err)
	}
	var out sudResp
	decodeReply(e.t, resp, &out)
	return out
}

func (e *env) sud(path string, body any) sudResp {
	e.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.sudWith(path, b, e.sudAuthHeader(e.cfg.SUDAppID, e.cfg.SUDAppSecret, b))
}

func validOrder(outOrderID string) map[string]any {
	return map[string]any{
		"out_order_id": outOrderID, "out_group_id": "g1", "mg_id": "1468180338417074177",
		"room_id": "9009", "cmd": "specify_dice_roll", "from_uid": "001", "to_uid": "002",
		"value": 100, "payload": map[string]any{"point": 6, "seq": 1},
	}
}

// wantPanic fails the test, saying what, when f returns without a panic:
// the Go API panics on what a test must never ask.
func wantPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Error(what)
		}
	}()
	f()
}

// faultOverHTTP sets f through the admin API and returns the faults the
// API lists then.
func (e *env) faultOverHTTP(f sandbox.Fault) []sandbox.Fault {
	e.t.Helper()
	a := sandbox.NewAdminClient(e.srv.URL)
	if err := a.SetFault(context.Background(), f); err != nil {
		e.t.Fatal(err)
	}
	got, err := a.Faults(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// waitFor waits for cond, for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	kit.Eventually(t, 10*time.Second, what, cond)
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
