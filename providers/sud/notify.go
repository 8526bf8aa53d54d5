package sud

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/coinsaga/coinsaga/providers/internal/wire"
)

// EventOrderChanged is the notify_event of an order's status change.
const EventOrderChanged = "sud.mg.merchant.order.changed"

// The headers SUD signs a notification with. The signature is the Sud-Auth
// one: hex HMAC-SHA1(app_secret, app_id\ntimestamp\nnonce\nbody\n).
const (
	HeaderAppID     = "Sud-AppId"
	HeaderTimestamp = "Sud-Timestamp"
	HeaderNonce     = "Sud-Nonce"
	HeaderSignature = "Sud-Signature"
)

const (
	// DefaultMaxSkew is how far a notification's Sud-Timestamp may be from
	// the receiver's clock, either way. ASSUMPTION: SUD documents no window;
	// five minutes is the one the real services are assumed to apply to
	// our own timestamps (providers.md).
	DefaultMaxSkew = 5 * time.Minute
	// maxNotifyBody bounds a notification body.
	maxNotifyBody = 1 << 20
	// msThreshold tells a millisecond Sud-Timestamp from a seconds one.
	// ASSUMPTION: SUD's docs leave the unit open (their example,
	// 146634788974, is neither a plausible seconds nor milliseconds value);
	// anything from 10^11 up is taken as milliseconds (10^11 seconds is the
	// year 5138), anything below as seconds.
	msThreshold = 100_000_000_000
)

// successReply is the exact answer SUD expects from a receiver that took
// the notification.
var successReply = []byte(`{"ret_code":0,"ret_msg":"SUCCESS"}`)

// NotifyConfig configures NotifyHandler.
type NotifyConfig struct {
	AppID     string
	AppSecret string           // secret: verifies Sud-Signature; never logged
	Now       func() time.Time // the receiver's clock; default time.Now
	MaxSkew   time.Duration    // default DefaultMaxSkew
	Logger    *slog.Logger     // why a notification was refused; nil = discard
}

// Notification is one verified sud.mg.merchant.order.changed notification.
type Notification struct {
	NotifyID   string    // SUD's id of the notification
	NotifyTime time.Time // when SUD sent it (notify_time, unix milliseconds); zero if absent
	AppID      string
	Event      string // EventOrderChanged
	// Order is the notification's data: the order's fields as created and
	// its new status, StatusExecuteSuccess or StatusExecuteFail.
	Order Order
}

// NotifyHandler returns the http.Handler SUD's order notifications are sent
// to. For each request it checks the Sud-AppId, the Sud-Timestamp against
// cfg.Now within cfg.MaxSkew and the Sud-Signature over the exact body
// (constant time), decodes the notification and calls onChange; it answers
// exactly {"ret_code":0,"ret_msg":"SUCCESS"} when onChange returns nil.
//
//   - A missing or wrong signature header, another app id or a stale
//     timestamp: HTTP 401 with a JSON error, onChange not called.
//   - A body that is not a notification (no order ids, unknown status):
//     HTTP 400, onChange not called.
//   - onChange failed: HTTP 500 with a non-zero ret_code, so SUD sends it
//     again later.
//   - A signed notification of another event is answered SUCCESS and not
//     passed on: it is not for this handler, and a refusal would only make
//     SUD repeat it.
//
// SUD may deliver a notification more than once (its retries), and before
// the create_order reply reaches the caller: onChange must be idempotent and
// must cope with an order it has not recorded as ordered yet.
//
// It panics when AppID, AppSecret or onChange is missing: a receiver that
// cannot verify must not be mounted at all.
func NotifyHandler(cfg NotifyConfig, onChange func(ctx context.Context, n Notification) error) http.Handler {
	if cfg.AppID == "" || cfg.AppSecret == "" || onChange == nil {
		panic("sud: NotifyHandler needs an app id, an app secret and an onChange function")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &notifyHandler{cfg: cfg, onChange: onChange}
}

type notifyHandler struct {
	cfg      NotifyConfig
	onChange func(ctx context.Context, n Notification) error
}

// notifyEnvelope is a notification as SUD sends it. Fields may be added
// (SUD's docs say so): unknown ones are ignored.
type notifyEnvelope struct {
	NotifyID    wire.FlexString `json:"notify_id"`
	NotifyTime  wire.FlexString `json:"notify_time"`
	AppID       wire.FlexString `json:"app_id"`
	NotifyEvent string          `json:"notify_event"`
	Data        json.RawMessage `json:"data"`
}

func (h *notifyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.refuse(w, r, http.StatusMethodNotAllowed, "method not allowed", "method "+r.Method)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxNotifyBody))
	if err != nil {
		h.refuse(w, r, http.StatusBadRequest, "body unreadable", err.Error())
		return
	}
	if msg, ok := h.verify(r.Header, body); !ok {
		h.refuse(w, r, http.StatusUnauthorized, "invalid signature", msg)
		return
	}
	n, msg, ok := h.decode(body)
	if !ok {
		h.refuse(w, r, http.StatusBadRequest, "bad notification", msg)
		return
	}
	if n.Event != EventOrderChanged {
		h.cfg.Logger.Debug("sud notify: event ignored", "event", n.Event, "notify_id", n.NotifyID)
		writeNotifyReply(w, http.StatusOK, successReply)
		return
	}
	if err := h.onChange(r.Context(), n); err != nil {
		// The error is ours to log, not SUD's to read.
		h.cfg.Logger.Warn("sud notify: not taken, SUD will retry", "notify_id", n.NotifyID,
			"out_order_id", n.Order.OutOrderID, "status", n.Order.Status, "err", err)
		writeNotifyError(w, http.StatusInternalServerError, "not processed, retry later")
		return
	}
	writeNotifyReply(w, http.StatusOK, successReply)
}

// verify checks the signature headers against body. The message says what
// was wrong, for the log; it never holds the signature or the secret.
func (h *notifyHandler) verify(hd http.Header, body []byte) (string, bool) {
	appID, ts, nonce, sig := hd.Get(HeaderAppID), hd.Get(HeaderTimestamp), hd.Get(HeaderNonce), hd.Get(HeaderSignature)
	if appID == "" || ts == "" || nonce == "" || sig == "" {
		return "a signature header is missing", false
	}
	if appID != h.cfg.AppID {
		return "another app id", false
	}
	at, ok := parseNotifyTimestamp(ts)
	if !ok {
		return "timestamp is not a unix time", false
	}
	if skew := h.cfg.Now().Sub(at); skew > h.cfg.MaxSkew || skew < -h.cfg.MaxSkew {
		return "timestamp outside the allowed skew", false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return "signature is not hex", false
	}
	if !hmac.Equal(signature(h.cfg.AppSecret, appID, ts, nonce, body), got) {
		return "signature mismatch", false
	}
	return "", true
}

// parseNotifyTimestamp reads a Sud-Timestamp in seconds or milliseconds
// (see msThreshold).
func parseNotifyTimestamp(ts string) (time.Time, bool) {
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	if n >= msThreshold {
		return time.UnixMilli(n), true
	}
	return time.Unix(n, 0), true
}

func (h *notifyHandler) decode(body []byte) (Notification, string, bool) {
	var env notifyEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Notification{}, "undecodable body", false
	}
	n := Notification{NotifyID: string(env.NotifyID), AppID: string(env.AppID), Event: env.NotifyEvent}
	if n.AppID != "" && n.AppID != h.cfg.AppID {
		// Signed by our secret yet addressed to another app: a configuration
		// mix-up that must show, not be acted on.
		return Notification{}, "app_id of the body is another app", false
	}
	if ms, err := strconv.ParseInt(string(env.NotifyTime), 10, 64); err == nil && ms > 0 {
		n.NotifyTime = time.UnixMilli(ms)
	}
	if n.Event != EventOrderChanged {
		return n, "", true
	}
	if len(bytes.TrimSpace(env.Data)) == 0 {
		return Notification{}, "no data", false
	}
	var d orderData
	if err := json.Unmarshal(env.Data, &d); err != nil {
		return Notification{}, "undecodable data: " + err.Error(), false
	}
	n.Order = d.order()
	switch {
	case n.Order.OutOrderID == "" || n.Order.OrderID == "":
		return Notification{}, "data has no out_order_id or order_id", false
	case !knownStatus(n.Order.Status):
		return Notification{}, "data has an unknown status", false
	}
	return n, "", true
}

func knownStatus(s string) bool {
	switch s {
	case StatusCreated, StatusExecuting, StatusExecuteFail, StatusExecuteSuccess:
		return true
	}
	return false
}

func (h *notifyHandler) refuse(w http.ResponseWriter, r *http.Request, status int, public, detail string) {
	h.cfg.Logger.Info("sud notify refused", "status", status, "reason", detail, "remote", r.RemoteAddr)
	writeNotifyError(w, status, public)
}

func writeNotifyError(w http.ResponseWriter, status int, msg string) {
	b, err := json.Marshal(struct {
		RetCode int    `json:"ret_code"`
		RetMsg  string `json:"ret_msg"`
	}{1, msg})
	if err != nil {
		b = []byte(`{"ret_code":1,"ret_msg":"error"}`)
	}
	writeNotifyReply(w, status, b)
}

func writeNotifyReply(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
