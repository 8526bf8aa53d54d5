package sud_test

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/providertest"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/providers/sud"
)

// The sandbox's default SUD credentials.
const (
	appID     = "sandbox-sud-app"
	appSecret = "sandbox-sud-secret"
)

type env struct {
	sb     *sandbox.Sandbox
	base   string
	client *sud.Client
	obs    *providertest.Recorder
}

// newEnv starts a sandbox and a client with configured endpoint URLs.
func newEnv(t testing.TB) *env {
	t.Helper()
	sb, url := providertest.Serve(t)
	obs := &providertest.Recorder{}
	c, err := sud.New(sud.Config{
		AppID: appID, AppSecret: appSecret,
		CreateOrderURL: url + "/sud/create_order", QueryOrderURL: url + "/sud/query_order",
		Observer: obs, Timeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{sb: sb, base: url, client: c, obs: obs}
}

func order(id string) sud.CreateOrderRequest {
	return sud.CreateOrderRequest{
		OutOrderID: id, OutGroupID: "group-1", MGID: "1468180338417074177", RoomID: "9009",
		Cmd: "specify_dice_roll", FromUID: "001", ToUID: "002", Value: 100,
		Payload: json.RawMessage(`{"point":6,"seq":1}`),
	}
}

// wantErr checks err is SUD's *providers.Error of class and code, with
// neither the secret nor the discovery key in it.
func wantErr(t *testing.T, err error, class providers.Class, code providers.Code) *providers.Error {
	t.Helper()
	return providertest.WantErr(t, err, "sud", class, code, appSecret, sud.DiscoveryKey(appSecret, appID))
}

func TestSignIsHexHMACSHA1OfTheDocumentedString(t *testing.T) {
	body := []byte(`{"out_order_id":"1659497694000","value":100}`)
	mac := hmac.New(sha1.New, []byte("the-secret"))
	mac.Write([]byte("app-1\n1700000000\nnonce-1\n" + string(body) + "\n"))
	want := hex.EncodeToString(mac.Sum(nil))

	if got := sud.Sign("the-secret", "app-1", "1700000000", "nonce-1", body); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	header := sud.AuthorizationHeader("the-secret", "app-1", "1700000000", "nonce-1", body)
	if wantH := `Sud-Auth app_id="app-1",timestamp="1700000000",nonce="nonce-1",signature="` + want + `"`; header != wantH {
		t.Errorf("AuthorizationHeader =\n %s\nwant\n %s", header, wantH)
	}
}

func TestDiscoveryKeyIsHexHMACMD5OfTheAppID(t *testing.T) {
	mac := hmac.New(md5.New, []byte(appSecret))
	mac.Write([]byte(appID))
	if got, want := sud.DiscoveryKey(appSecret, appID), hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Errorf("DiscoveryKey = %s, want %s", got, want)
	}
}

func TestTimestampIsInSeconds(t *testing.T) {
	if got := sud.Timestamp(time.Unix(1700000000, 999_000_000)); got != "1700000000" {
		t.Errorf("Timestamp = %q", got)
	}
}

func TestNoncesAreFresh(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		n := sud.Nonce()
		if len(n) < 16 || seen[n] {
			t.Fatalf("nonce %q is short or repeated", n)
		}
		seen[n] = true
	}
}

func TestNewRefusesAnIncompleteConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  sud.Config
	}{
		{"without an app id", sud.Config{AppSecret: "s", CreateOrderURL: "http://h/c", QueryOrderURL: "http://h/q"}},
		{"without a secret", sud.Config{AppID: "a", CreateOrderURL: "http://h/c", QueryOrderURL: "http://h/q"}},
		{"without URLs or discovery", sud.Config{AppID: "a", AppSecret: "s"}},
		{"with only create_order and no discovery", sud.Config{AppID: "a", AppSecret: "s", CreateOrderURL: "http://h/c"}},
		{"with a relative URL", sud.Config{AppID: "a", AppSecret: "s", CreateOrderURL: "/c", QueryOrderURL: "http://h/q"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sud.New(tt.cfg); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}

func TestAgainstTheSandbox(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.client

	t.Run("a new order is created and query_order finds it", func(t *testing.T) {
		r, err := c.CreateOrder(ctx, order("order-1"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Class != providers.OK || r.OutOrderID != "order-1" || r.OrderID == "" {
			t.Fatalf("create = %+v", r)
		}
		if got := e.obs.Last(); got != "sud create_order ok" {
			t.Errorf("observed %q", got)
		}
		o, err := c.QueryOrder(ctx, "order-1")
		if err != nil {
			t.Fatal(err)
		}
		want := sud.Order{OutOrderID: "order-1", OrderID: r.OrderID, Status: sud.StatusExecuteSuccess,
			OutGroupID: "group-1", MgID: "1468180338417074177", RoomID: "9009", Cmd: "specify_dice_roll",
			FromUID: "001", ToUID: "002", Value: 100, Payload: `{"point":6,"seq":1}`}
		if o != want {
			t.Errorf("query = %+v\nwant    %+v", o, want)
		}
	})

	t.Run("a repeated out_order_id is already done without an order id", func(t *testing.T) {
		r, err := c.CreateOrder(ctx, order("order-1"))
		if err != nil {
			t.Fatal(err)
		}
		if r != (sud.CreateOrderReply{Class: providers.AlreadyDone, OutOrderID: "order-1"}) {
			t.Errorf("repeat = %+v", r)
		}
		if got := e.obs.Last(); got != "sud create_order already_done" {
			t.Errorf("observed %q", got)
		}
	})

	t.Run("an order without payload is accepted", func(t *testing.T) {
		o := order("order-no-payload")
		o.Payload = nil
		if _, err := c.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
		o = order("order-null-payload")
		o.Payload = json.RawMessage("null")
		if _, err := c.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("an unknown order is final not found", func(t *testing.T) {
		_, err := c.QueryOrder(ctx, "never-created")
		pe := wantErr(t, err, providers.Final, providers.CodeNotFound)
		if pe.Ret != 70503 {
			t.Errorf("Ret = %d", pe.Ret)
		}
	})

	t.Run("a parameter SUD refuses is a final param error", func(t *testing.T) {
		o := order("order-bad")
		o.MGID = ""
		_, err := c.CreateOrder(ctx, o)
		pe := wantErr(t, err, providers.Final, providers.CodeParamError)
		if pe.Ret != 10002 {
			t.Errorf("Ret = %d", pe.Ret)
		}
		o = order("order-bad-payload")
		o.Payload = json.RawMessage(`[1,2]`)
		_, err = c.CreateOrder(ctx, o)
		wantErr(t, err, providers.Final, providers.CodeParamError)
	})

	t.Run("a wrong app secret is final auth failed", func(t *testing.T) {
		bad, err := sud.New(sud.Config{AppID: appID, AppSecret: "wrong", CreateOrderURL: e.base + "/sud/create_order", QueryOrderURL: e.base + "/sud/query_order"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.CreateOrder(ctx, order("order-auth"))
		pe := wantErr(t, err, providers.Final, providers.CodeAuthFailed)
		if pe.Ret != 10004 {
			t.Errorf("Ret = %d", pe.Ret)
		}
	})

	t.Run("a wrong app id is final auth failed", func(t *testing.T) {
		bad, err := sud.New(sud.Config{AppID: "other-app", AppSecret: appSecret, CreateOrderURL: e.base + "/sud/create_order", QueryOrderURL: e.base + "/sud/query_order"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.QueryOrder(ctx, "order-1")
		pe := wantErr(t, err, providers.Final, providers.CodeAuthFailed)
		if pe.Ret != 10003 {
			t.Errorf("Ret = %d", pe.Ret)
		}
	})

	t.Run("ids SUD would refuse never leave", func(t *testing.T) {
		for _, o := range []sud.CreateOrderRequest{order(""), order(strings.Repeat("x", 65)), func() sud.CreateOrderRequest {
			o := order("ok")
			o.OutGroupID = strings.Repeat("g", 65)
			return o
		}()} {
			_, err := c.CreateOrder(ctx, o)
			wantErr(t, err, providers.Final, providers.CodeParamError)
		}
		_, err := c.QueryOrder(ctx, "")
		wantErr(t, err, providers.Final, providers.CodeParamError)
		if n := len(e.sb.SUDOrders()); n != 3 {
			t.Errorf("%d orders in the sandbox, want the 3 created above", n)
		}
	})

	t.Run("64 characters of out_order_id are fine, even multi-byte ones", func(t *testing.T) {
		if _, err := c.CreateOrder(ctx, order(strings.Repeat("单", 64))); err != nil {
			t.Fatal(err)
		}
	})
}

func TestFaultsAreRetryable(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if _, err := e.client.CreateOrder(ctx, order("existing")); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name     string
		endpoint string
		call     func(n int) error
	}{
		{"create_order", "sud.create_order", func(n int) error {
			_, err := e.client.CreateOrder(ctx, order(fmt.Sprintf("fault-%d", n)))
			return err
		}},
		{"query_order", "sud.query_order", func(int) error { _, err := e.client.QueryOrder(ctx, "existing"); return err }},
	}
	faults := []struct {
		name  string
		fault sandbox.Fault
		code  providers.Code
		ret   int
	}{
		{"busy (10001)", sandbox.Fault{BusyRate: 1}, providers.CodeBusy, 10001},
		{"HTTP 500", sandbox.Fault{ErrorRate: 1}, providers.CodeUnavailable, 0},
		{"a dropped reply", sandbox.Fault{DropReplyRate: 1}, providers.CodeUnavailable, 0},
	}
	n := 0
	for _, call := range calls {
		for _, f := range faults {
			t.Run(call.name+" answered with "+f.name+" is retryable", func(t *testing.T) {
				fault := f.fault
				fault.Endpoint = call.endpoint
				e.sb.SetFault(fault)
				defer e.sb.ClearFaults()
				n++
				pe := wantErr(t, call.call(n), providers.Retryable, f.code)
				if pe.Ret != f.ret {
					t.Errorf("Ret = %d, want %d", pe.Ret, f.ret)
				}
				if got := e.obs.Last(); got != "sud "+call.name+" retryable" {
					t.Errorf("observed %q", got)
				}
			})
		}
	}
}

func TestALostCreateOrderReplyIsResolvedByQueryOrder(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", DropReplyRate: 1})
	_, err := e.client.CreateOrder(ctx, order("lost-reply"))
	wantErr(t, err, providers.Retryable, providers.CodeUnavailable)
	e.sb.ClearFaults()

	r, err := e.client.CreateOrder(ctx, order("lost-reply"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Class != providers.AlreadyDone || r.OrderID != "" {
		t.Fatalf("retry = %+v, want already done", r)
	}
	o, err := e.client.QueryOrder(ctx, "lost-reply")
	if err != nil {
		t.Fatal(err)
	}
	orders := e.sb.SUDOrders()
	if len(orders) != 1 || orders[0].OrderID != o.OrderID {
		t.Errorf("sandbox orders %+v, query %+v: want exactly the one order", orders, o)
	}
}

// capture is a SUD stand-in that records the last request and answers with
// a fixed reply.
type capture struct {
	mu     sync.Mutex
	header http.Header
	body   []byte
	status int
	reply  string
	hits   atomic.Int32
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.hits.Add(1)
	raw, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.header, c.body = r.Header.Clone(), raw
	status, reply := c.status, c.reply
	c.mu.Unlock()
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, reply)
}

func newCapture(t *testing.T, reply string) (*capture, *sud.Client) {
	t.Helper()
	cp := &capture{reply: reply}
	srv := httptest.NewServer(cp)
	t.Cleanup(srv.Close)
	at := time.Unix(1700000000, 0)
	c, err := sud.New(sud.Config{AppID: appID, AppSecret: appSecret, CreateOrderURL: srv.URL + "/c", QueryOrderURL: srv.URL + "/q",
		Timeout: time.Second, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	return cp, c
}

func TestWireFormat(t *testing.T) {
	ctx := context.Background()

	t.Run("create_order sends the seed's fields, signed over the exact body", func(t *testing.T) {
		cp, c := newCapture(t, `{"ret_code":0,"ret_msg":"","data":{"out_order_id":"1659497694000","order_id":"order_id_1"}}`)
		req := order("1659497694000")
		r, err := c.CreateOrder(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if r != (sud.CreateOrderReply{Class: providers.OK, OutOrderID: "1659497694000", OrderID: "order_id_1"}) {
			t.Errorf("reply = %+v", r)
		}
		if ct := cp.header.Get("Content-Type"); ct != "application/json;charset=utf-8" {
			t.Errorf("Content-Type = %q", ct)
		}
		var got map[string]any
		if err := json.Unmarshal(cp.body, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"out_order_id": "1659497694000", "out_group_id": "group-1", "mg_id": "1468180338417074177", "room_id": "9009",
			"cmd": "specify_dice_roll", "from_uid": "001", "to_uid": "002", "value": 100.0,
			"payload": map[string]any{"point": 6.0, "seq": 1.0},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("body = %v\nwant %v", got, want)
		}
		checkAuth(t, cp.header.Get("Authorization"), cp.body)
	})

	t.Run("an empty out_group_id and payload are left out", func(t *testing.T) {
		cp, c := newCapture(t, `{"ret_code":0,"data":{"order_id":"x"}}`)
		req := order("o")
		req.OutGroupID, req.Payload = "", json.RawMessage(" null ")
		if _, err := c.CreateOrder(ctx, req); err != nil {
			t.Fatal(err)
		}
		if s := string(cp.body); strings.Contains(s, "payload") || strings.Contains(s, "out_group_id") {
			t.Errorf("body = %s", s)
		}
	})

	t.Run("query_order sends the out_order_id, signed", func(t *testing.T) {
		cp, c := newCapture(t, `{"ret_code":0,"data":{"out_order_id":"o","order_id":"x","status":"EXECUTING"}}`)
		o, err := c.QueryOrder(ctx, "o")
		if err != nil {
			t.Fatal(err)
		}
		if o != (sud.Order{OutOrderID: "o", OrderID: "x", Status: sud.StatusExecuting}) {
			t.Errorf("order = %+v", o)
		}
		if string(cp.body) != `{"out_order_id":"o"}` {
			t.Errorf("body = %s", cp.body)
		}
		checkAuth(t, cp.header.Get("Authorization"), cp.body)
	})
}

// checkAuth parses a Sud-Auth header and verifies it independently.
func checkAuth(t *testing.T, header string, body []byte) {
	t.Helper()
	rest, ok := strings.CutPrefix(header, "Sud-Auth ")
	if !ok {
		t.Fatalf("Authorization = %q", header)
	}
	f := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(part, "=")
		f[k] = strings.Trim(v, `"`)
	}
	if f["app_id"] != appID || f["timestamp"] != "1700000000" || f["nonce"] == "" {
		t.Errorf("header fields = %v", f)
	}
	mac := hmac.New(sha1.New, []byte(appSecret))
	mac.Write([]byte(appID + "\n" + f["timestamp"] + "\n" + f["nonce"] + "\n" + string(body) + "\n"))
	if want := hex.EncodeToString(mac.Sum(nil)); f["signature"] != want {
		t.Errorf("signature = %s, want %s", f["signature"], want)
	}
}

func TestReplies(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		query  bool
		status int
		reply  string
		class  providers.Class
		code   providers.Code
	}{
		{"10111 is final game not found", false, 200, `{"ret_code":10111,"ret_msg":"game not found"}`, providers.Final, providers.CodeGameNotFound},
		{"10003 is final auth failed", false, 200, `{"ret_code":10003}`, providers.Final, providers.CodeAuthFailed},
		{"70501 on query_order is final already exists", true, 200, `{"ret_code":70501}`, providers.Final, providers.CodeAlreadyExists},
		{"an unknown code is final unknown", false, 200, `{"ret_code":99999}`, providers.Final, providers.CodeUnknown},
		{"ret_code as a string is read", false, 200, `{"ret_code":"10001","ret_msg":"busy"}`, providers.Retryable, providers.CodeBusy},
		{"a success without order_id is a retryable bad reply", false, 200, `{"ret_code":0,"data":{}}`, providers.Retryable, providers.CodeBadReply},
		{"a success with null data is a retryable bad reply", true, 200, `{"ret_code":0,"data":null}`, providers.Retryable, providers.CodeBadReply},
		{"a reply without ret_code is a retryable bad reply", false, 200, `{"data":{"order_id":"x"}}`, providers.Retryable, providers.CodeBadReply},
		{"an HTML page is a retryable bad reply", false, 200, `<html></html>`, providers.Retryable, providers.CodeBadReply},
		{"a reply larger than 1 MiB is a retryable bad reply", false, 200, `{"ret_code":0,"ret_msg":"` + strings.Repeat("x", 1<<20) + `"}`, providers.Retryable, providers.CodeBadReply},
		{"HTTP 502 is retryable unavailable", true, 502, ``, providers.Retryable, providers.CodeUnavailable},
		{"HTTP 401 is a final bad reply", false, 401, ``, providers.Final, providers.CodeBadReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp, c := newCapture(t, tt.reply)
			cp.status = tt.status
			var err error
			if tt.query {
				_, err = c.QueryOrder(ctx, "o")
			} else {
				_, err = c.CreateOrder(ctx, order("o"))
			}
			wantErr(t, err, tt.class, tt.code)
		})
	}

	t.Run("numeric ids in data are read as their digits", func(t *testing.T) {
		_, c := newCapture(t, `{"ret_code":0,"data":{"out_order_id":1659497694000,"order_id":123456789012345678901}}`)
		r, err := c.CreateOrder(ctx, order("1659497694000"))
		if err != nil {
			t.Fatal(err)
		}
		if r.OrderID != "123456789012345678901" || r.OutOrderID != "1659497694000" {
			t.Errorf("reply = %+v", r)
		}
	})

	t.Run("query_order reads the order's fields, numbers or strings alike", func(t *testing.T) {
		_, c := newCapture(t, `{"ret_code":0,"ret_msg":"","data":{"order_id":1573254561852952576,"out_order_id":"o",`+
			`"out_group_id":"g","mg_id":1461228379255603251,"room_id":9009,"cmd":"test","from_uid":"001","to_uid":"002",`+
			`"value":"7","payload":{"score":1},"status":"EXECUTE_FAIL","round_id":"new-field"}}`)
		o, err := c.QueryOrder(ctx, "o")
		if err != nil {
			t.Fatal(err)
		}
		want := sud.Order{OutOrderID: "o", OrderID: "1573254561852952576", Status: sud.StatusExecuteFail, OutGroupID: "g",
			MgID: "1461228379255603251", RoomID: "9009", Cmd: "test", FromUID: "001", ToUID: "002", Value: 7, Payload: `{"score":1}`}
		if o != want {
			t.Errorf("order = %+v\nwant    %+v", o, want)
		}
	})

	t.Run("a value beyond int32 is reported as SUD wrote it, never narrowed into a match", func(t *testing.T) {
		_, c := newCapture(t, `{"ret_code":0,"data":{"order_id":"x","out_order_id":"o","value":4294967396,"status":"EXECUTE_SUCCESS"}}`)
		o, err := c.QueryOrder(ctx, "o")
		if err != nil {
			t.Fatal(err)
		}
		if o.Value != 4294967396 {
			t.Errorf("Value = %d", o.Value)
		}
	})

	t.Run("a success for another out_order_id is a retryable bad reply", func(t *testing.T) {
		_, c := newCapture(t, `{"ret_code":0,"data":{"out_order_id":"someone-else","order_id":"x","status":"CREATED"}}`)
		_, err := c.CreateOrder(ctx, order("o"))
		wantErr(t, err, providers.Retryable, providers.CodeBadReply)
		_, err = c.QueryOrder(ctx, "o")
		wantErr(t, err, providers.Retryable, providers.CodeBadReply)
	})

	t.Run("a provider message that echoes the secret is masked", func(t *testing.T) {
		_, c := newCapture(t, `{"ret_code":10004,"ret_msg":"secret `+appSecret+` is wrong"}`)
		_, err := c.CreateOrder(ctx, order("o"))
		wantErr(t, err, providers.Final, providers.CodeAuthFailed)
	})
}

func TestTimeout(t *testing.T) {
	hanging := providertest.Hanging(t)
	c, err := sud.New(sud.Config{AppID: appID, AppSecret: appSecret, CreateOrderURL: hanging, QueryOrderURL: hanging, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateOrder(context.Background(), order("slow"))
	wantErr(t, err, providers.Retryable, providers.CodeTimeout)
}

func TestClassify(t *testing.T) {
	tests := []struct {
		endpoint string
		ret      int
		class    providers.Class
		code     providers.Code
	}{
		{"create_order", 0, providers.OK, ""},
		{"create_order", 70501, providers.AlreadyDone, ""},
		{"query_order", 70501, providers.Final, providers.CodeAlreadyExists},
		{"create_order", 10001, providers.Retryable, providers.CodeBusy},
		{"create_order", 10002, providers.Final, providers.CodeParamError},
		{"create_order", 10003, providers.Final, providers.CodeAuthFailed},
		{"query_order", 10004, providers.Final, providers.CodeAuthFailed},
		{"create_order", 10111, providers.Final, providers.CodeGameNotFound},
		{"query_order", 70503, providers.Final, providers.CodeNotFound},
		{"create_order", 1, providers.Final, providers.CodeUnknown},
	}
	for _, tt := range tests {
		class, code := sud.Classify(tt.endpoint, tt.ret)
		if class != tt.class || code != tt.code {
			t.Errorf("Classify(%s, %d) = %v/%q, want %v/%q", tt.endpoint, tt.ret, class, code, tt.class, tt.code)
		}
	}
}
