package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// exampleIntent is the intent of contract.md section 3.
const exampleIntent = `{"out_order_id":"1659497694000","out_group_id":"1659497694","mg_id":"1468180338417074177",
 "room_id":"9009","cmd":"specify_dice_roll","from_uid":"001","to_uid":"002","value":100,
 "payload":{"point":6,"seq":1},
 "payment":{"provider":"mogs","amount":100,"openid":"opvxI4y_cVJx2pxsFCQrJ4FZB5gk",
   "mogs":{"js_code":"xxx","app_plat":1,"os_plat_id":1,"session_key":"","pay_item":"dice"},
   "midas":{"openkey":"…","pf":"…","pfkey":"…","zoneid":"1","session_type":"kp_actoken","userip":"","accounttype":"common"}}}`

// Secret values used by the tests: none may ever appear in an error.
const (
	secretJSCode  = "JSCODE-SECRET-7f3a"
	secretOpenKey = "OPENKEY-SECRET-91bc"
	secretPFKey   = "PFKEY-SECRET-55de"
)

// intentJSON returns the example intent with edit applied to its decoded
// form, re-encoded; edit may delete keys or set them to anything.
func intentJSON(t testing.TB, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(exampleIntent), &m); err != nil {
		t.Fatal(err)
	}
	pay := m["payment"].(map[string]any)
	pay["mogs"].(map[string]any)["js_code"] = secretJSCode
	midas := pay["midas"].(map[string]any)
	midas["openkey"], midas["pf"], midas["pfkey"] = secretOpenKey, "desktop_m_qq-2001-android", secretPFKey
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func payment(m map[string]any) map[string]any { return m["payment"].(map[string]any) }
func mogs(m map[string]any) map[string]any    { return payment(m)["mogs"].(map[string]any) }
func midas(m map[string]any) map[string]any   { return payment(m)["midas"].(map[string]any) }

func TestDecodeIntentAcceptsTheContractExample(t *testing.T) {
	in, err := DecodeIntent([]byte(exampleIntent))
	if err != nil {
		t.Fatal(err)
	}
	if in.OutOrderID != "1659497694000" || in.MgID != "1468180338417074177" || in.RoomID != "9009" ||
		in.Value != 100 || in.Payment.Amount != 100 || in.Payment.MOGS == nil || in.Payment.MOGS.AppPlat != 1 {
		t.Fatalf("decoded %+v", in)
	}
	if string(in.Payload) != `{"point":6,"seq":1}` {
		t.Fatalf("payload %s, want it compacted", in.Payload)
	}
	if err := in.Validate(DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeIntentRefusesWhatCannotNameAnOrder(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"an intent over 64 KiB is refused before parsing", append(intentJSON(t, nil), make([]byte, MaxIntentSize)...), "exceeds"},
		{"empty input is not an object", nil, "not a JSON object"},
		{"a JSON array is not an object", []byte(`[1,2]`), "not a JSON object"},
		{"JSON null is not an object", []byte(`null`), "not a JSON object"},
		{"a JSON string is not an object", []byte(`"x"`), "not a JSON object"},
		{"truncated JSON is malformed", intentJSON(t, nil)[:40], "malformed JSON"},
		{"trailing garbage is malformed", append(intentJSON(t, nil), '}'), "malformed JSON"},
		{"a string value is not an int32", intentJSON(t, func(m map[string]any) { m["value"] = "100" }), "field value"},
		{"a value above int32 does not fit", intentJSON(t, func(m map[string]any) { m["value"] = 1 << 31 }), "field value"},
		{"a fractional value is not an int32", intentJSON(t, func(m map[string]any) { m["value"] = 1.5 }), "field value"},
		{"a numeric out_order_id is the wrong type", intentJSON(t, func(m map[string]any) { m["out_order_id"] = 1659497694000 }), "field out_order_id"},
		{"payment as a string is the wrong type", intentJSON(t, func(m map[string]any) { m["payment"] = "mogs" }), "field payment"},
		{"a missing out_order_id cannot name an order", intentJSON(t, func(m map[string]any) { delete(m, "out_order_id") }), "out_order_id is missing"},
		{"a missing mg_id cannot name a subject", intentJSON(t, func(m map[string]any) { delete(m, "mg_id") }), "mg_id is missing"},
		{"a missing room_id cannot name a subject", intentJSON(t, func(m map[string]any) { m["room_id"] = "" }), "room_id is missing"},
		{"an out_order_id with a dot is not a safe token", intentJSON(t, func(m map[string]any) { m["out_order_id"] = "a.b" }), "out_order_id"},
		{"an mg_id with a wildcard is not a safe token", intentJSON(t, func(m map[string]any) { m["mg_id"] = "*" }), "mg_id"},
		{"a room_id with a space is not a safe token", intentJSON(t, func(m map[string]any) { m["room_id"] = "90 09" }), "room_id"},
		{"a room_id of > is not a safe token", intentJSON(t, func(m map[string]any) { m["room_id"] = ">" }), "room_id"},
		{"an out_order_id of 65 characters is too long", intentJSON(t, func(m map[string]any) { m["out_order_id"] = strings.Repeat("a", 65) }), "out_order_id"},
		{"a non-ASCII out_order_id is not a safe token", intentJSON(t, func(m map[string]any) { m["out_order_id"] = "订单1" }), "out_order_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeIntent(tt.data)
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("want *InvalidError, got %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
			if ie.DeadLetterReason() != ReasonInvalid {
				t.Fatalf("dead-letter reason %q", ie.DeadLetterReason())
			}
		})
	}
}

func TestDecodeIntentErrorsNeverQuoteTheInput(t *testing.T) {
	// encoding/json quotes the offending token; a secret could be one.
	tests := []struct {
		name string
		data string
	}{
		{"a syntax error inside js_code", `{"payment":{"mogs":{"js_code":"` + secretJSCode + `\x"}}}`},
		{"a bare word where a value is expected", `{"payment":{"mogs":{"js_code":` + secretJSCode + `}}}`},
		{"a secret given as a number", `{"payment":{"midas":{"openkey":12345678901234567}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeIntent([]byte(tt.data))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, secret := range []string{secretJSCode, "JSCODE", "12345678901234567", `'\x'`} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q quotes %q", err, secret)
				}
			}
		})
	}
}

func TestValidateRefusesWhatSUDOrTheProvidersWouldRefuse(t *testing.T) {
	useMidas := func(m map[string]any) { payment(m)["provider"] = "midas"; delete(payment(m), "mogs") }
	tests := []struct {
		name      string
		edit      func(m map[string]any)
		wantField string // "" means valid
	}{
		{"the contract example is valid", nil, ""},
		{"a midas payment with only the midas block is valid", useMidas, ""},
		{"a mogs payment with only the mogs block is valid", func(m map[string]any) { delete(payment(m), "midas") }, ""},
		{"an unknown game with any cmd and a zero value is valid", func(m map[string]any) {
			m["mg_id"], m["cmd"], m["value"], m["payload"] = "1461228379255603251", "add_score", 0, map[string]any{"any": "thing"}
		}, ""},
		{"an unknown game without payload is valid", func(m map[string]any) { m["mg_id"] = "42"; delete(m, "payload") }, ""},
		{"a null payload counts as absent", func(m map[string]any) { m["mg_id"] = "42"; m["payload"] = nil }, ""},

		{"a missing cmd is refused", func(m map[string]any) { delete(m, "cmd") }, "cmd"},
		{"a cmd of 65 characters is refused", func(m map[string]any) { m["mg_id"] = "42"; m["cmd"] = strings.Repeat("c", 65) }, "cmd"},
		{"a missing from_uid is refused", func(m map[string]any) { m["from_uid"] = "" }, "from_uid"},
		{"a from_uid with a newline is refused", func(m map[string]any) { m["from_uid"] = "00\n1" }, "from_uid"},
		{"a missing to_uid is refused", func(m map[string]any) { delete(m, "to_uid") }, "to_uid"},
		{"a to_uid of 65 characters is refused", func(m map[string]any) { m["to_uid"] = strings.Repeat("玩", 65) }, "to_uid"},
		{"a to_uid of 64 Chinese characters is valid", func(m map[string]any) { m["to_uid"] = strings.Repeat("玩", 64) }, ""},
		{"an out_group_id of 65 characters is refused", func(m map[string]any) { m["out_group_id"] = strings.Repeat("g", 65) }, "out_group_id"},
		{"a negative value for an unknown game is refused", func(m map[string]any) { m["mg_id"] = "42"; m["value"] = -1 }, "value"},
		{"a payload array for an unknown game is refused", func(m map[string]any) { m["mg_id"] = "42"; m["payload"] = []int{1} }, "payload"},
		{"a known game's cmd it does not sell is refused", func(m map[string]any) { m["cmd"] = "add_score" }, "cmd"},
		{"a known game's payload out of range is refused", func(m map[string]any) { m["payload"] = map[string]any{"point": 7, "seq": 1} }, "payload.point"},

		{"a missing payment block is refused as missing", func(m map[string]any) { delete(m, "payment") }, "payment"},
		{"a null payment block is refused as missing", func(m map[string]any) { m["payment"] = nil }, "payment"},
		{"an empty payment block is refused as missing", func(m map[string]any) { m["payment"] = map[string]any{} }, "payment"},
		{"an unknown provider is refused", func(m map[string]any) { payment(m)["provider"] = "paypal" }, "payment.provider"},
		{"a missing provider is refused", func(m map[string]any) { delete(payment(m), "provider") }, "payment.provider"},
		{"an amount of 0 is refused", func(m map[string]any) { payment(m)["amount"] = 0 }, "payment.amount"},
		{"a negative amount is refused", func(m map[string]any) { payment(m)["amount"] = -100 }, "payment.amount"},
		{"an amount of 2^31 is refused", func(m map[string]any) { payment(m)["amount"] = int64(1) << 31 }, "payment.amount"},
		{"an amount of 2^31-1 is valid", func(m map[string]any) { payment(m)["amount"] = int64(1)<<31 - 1 }, ""},
		{"a missing openid is refused", func(m map[string]any) { delete(payment(m), "openid") }, "payment.openid"},
		{"an openid with a control character is refused", func(m map[string]any) { payment(m)["openid"] = "op\x00x" }, "payment.openid"},

		{"a mogs payment without the mogs block is refused", func(m map[string]any) { delete(payment(m), "mogs") }, "payment.mogs"},
		{"a mogs payment without js_code is refused", func(m map[string]any) { delete(mogs(m), "js_code") }, "payment.mogs.js_code"},
		{"a js_code with a line break is refused", func(m map[string]any) { mogs(m)["js_code"] = secretJSCode + "\r\n" }, "payment.mogs.js_code"},
		{"app_plat 2 (QQ, unsupported by MOGS) is refused", func(m map[string]any) { mogs(m)["app_plat"] = 2 }, "payment.mogs.app_plat"},
		{"a missing app_plat is valid", func(m map[string]any) { delete(mogs(m), "app_plat") }, ""},
		{"os_plat_id 2 is refused", func(m map[string]any) { mogs(m)["os_plat_id"] = 2 }, "payment.mogs.os_plat_id"},

		{"a midas payment without the midas block is refused", func(m map[string]any) { useMidas(m); delete(payment(m), "midas") }, "payment.midas"},
		{"a midas payment without openkey is refused", func(m map[string]any) { useMidas(m); delete(midas(m), "openkey") }, "payment.midas.openkey"},
		{"a midas payment without pf is refused", func(m map[string]any) { useMidas(m); midas(m)["pf"] = "" }, "payment.midas.pf"},
		{"a midas payment without pfkey is refused", func(m map[string]any) { useMidas(m); delete(midas(m), "pfkey") }, "payment.midas.pfkey"},
		{"an unknown session_type is refused", func(m map[string]any) { useMidas(m); midas(m)["session_type"] = "qq" }, "payment.midas.session_type"},
		{"each documented session_type is valid", func(m map[string]any) { useMidas(m); midas(m)["session_type"] = "openkey" }, ""},
		{"an unknown accounttype is refused", func(m map[string]any) { useMidas(m); midas(m)["accounttype"] = "gold" }, "payment.midas.accounttype"},
		{"an accounttype of security is valid", func(m map[string]any) { useMidas(m); midas(m)["accounttype"] = "security" }, ""},
		{"a userip that is not an address is refused", func(m map[string]any) { useMidas(m); midas(m)["userip"] = "localhost" }, "payment.midas.userip"},
		{"an IPv6 userip is valid", func(m map[string]any) { useMidas(m); midas(m)["userip"] = "2001:db8::1" }, ""},
		{"a mogs payment ignores a broken midas block", func(m map[string]any) { midas(m)["session_type"] = "bogus"; delete(midas(m), "openkey") }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := DecodeIntent(intentJSON(t, tt.edit))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			err = in.Validate(DefaultCatalog())
			ve := wantInvalid(t, err, tt.wantField)
			if ve == nil {
				return
			}
			if ve.DeadLetterReason() != ReasonRejected {
				t.Fatalf("dead-letter reason %q", ve.DeadLetterReason())
			}
			for _, secret := range []string{secretJSCode, secretOpenKey, secretPFKey} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q quotes a secret", err)
				}
			}
		})
	}
}

func TestValidateWithoutCatalogDoesOnlyGenericChecks(t *testing.T) {
	in, err := DecodeIntent(intentJSON(t, func(m map[string]any) { m["payload"] = map[string]any{"point": 99} }))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Validate(nil); err != nil {
		t.Fatalf("nil catalog: %v", err)
	}
	if err := in.Validate(DefaultCatalog()); err == nil {
		t.Fatal("default catalog: want payload.point refused")
	}
}

func TestHash(t *testing.T) {
	base, err := DecodeIntent([]byte(exampleIntent))
	if err != nil {
		t.Fatal(err)
	}
	h := base.Hash()
	if len(h) != 64 {
		t.Fatalf("hash %q is not hex sha256", h)
	}
	same := []struct{ name, data string }{
		{"the same bytes hash alike", exampleIntent},
		{"whitespace does not matter", strings.Join(strings.Fields(exampleIntent), "")},
		{"top-level key order does not matter", `{"payment":{"midas":{"accounttype":"common","userip":"","session_type":"kp_actoken","zoneid":"1","pfkey":"…","pf":"…","openkey":"…"},"mogs":{"pay_item":"dice","session_key":"","os_plat_id":1,"app_plat":1,"js_code":"xxx"},"openid":"opvxI4y_cVJx2pxsFCQrJ4FZB5gk","amount":100,"provider":"mogs"},"payload":{"seq":1,"point":6},"value":100,"to_uid":"002","from_uid":"001","cmd":"specify_dice_roll","room_id":"9009","mg_id":"1468180338417074177","out_group_id":"1659497694","out_order_id":"1659497694000"}`},
		{"payload key order and spacing do not matter", strings.Replace(exampleIntent, `{"point":6,"seq":1}`, `{ "seq" : 1 , "point" : 6 }`, 1)},
		{"unicode escapes in strings do not matter", strings.Replace(exampleIntent, `"from_uid":"001"`, `"from_uid":"\u0030\u00301"`, 1)},
		{"an unknown extra key does not matter", strings.Replace(exampleIntent, `"value":100`, `"value":100,"note":"x"`, 1)},
	}
	for _, tt := range same {
		t.Run(tt.name, func(t *testing.T) {
			in, err := DecodeIntent([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if got := in.Hash(); got != h {
				t.Fatalf("hash %s, want %s", got, h)
			}
		})
	}
	different := []struct{ name, from, to string }{
		{"another amount changes the hash", `"amount":100`, `"amount":101`},
		{"another payload value changes the hash", `"point":6`, `"point":5`},
		{"another js_code changes the hash", `"js_code":"xxx"`, `"js_code":"yyy"`},
		{"no payload differs from an empty one", `"payload":{"point":6,"seq":1},`, `"payload":{},`},
		{"no payload differs from a payload", `"payload":{"point":6,"seq":1},`, ``},
		{"another out_group_id changes the hash", `"out_group_id":"1659497694"`, `"out_group_id":"1659497695"`},
	}
	for _, tt := range different {
		t.Run(tt.name, func(t *testing.T) {
			data := strings.Replace(exampleIntent, tt.from, tt.to, 1)
			if data == exampleIntent {
				t.Fatalf("edit %q did not apply", tt.from)
			}
			in, err := DecodeIntent([]byte(data))
			if err != nil {
				t.Fatal(err)
			}
			if in.Hash() == h {
				t.Fatal("hash did not change")
			}
		})
	}
	t.Run("a hand-built intent with an unparsable payload still hashes", func(t *testing.T) {
		a := base
		a.Payload = json.RawMessage(`{broken`)
		if a.Hash() == h {
			t.Fatal("hash did not change")
		}
	})
}

func FuzzDecodeIntent(f *testing.F) {
	f.Add([]byte(exampleIntent))
	f.Add([]byte(`{"out_order_id":"a","mg_id":"b","room_id":"c","payload":null}`))
	f.Add([]byte(`{"out_order_id":"a","mg_id":"b","room_id":"c","payload":"<&>\u2028"}`))
	f.Add([]byte(`{"out_order_id":"a","mg_id":"1704460412809043970","room_id":"c","cmd":"paid_events_20","payload":{"point":1e1,"x":[{"b":1,"a":2}]}}`))
	f.Add([]byte(`{"out_order_id":"a","mg_id":"b","room_id":"c","from_uid":"\xff\xfe"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"value":1e99}`))
	c := DefaultCatalog()
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := DecodeIntent(data)
		if err != nil {
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("decode error %T is not *InvalidError: %v", err, err)
			}
			return
		}
		if err := in.Validate(c); err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("validate error %T is not *ValidationError: %v", err, err)
			}
		}
		h := in.Hash()
		again, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if len(again) > MaxIntentSize {
			return // escaping grew it past the limit; nothing to compare
		}
		in2, err := DecodeIntent(again)
		if err != nil {
			t.Fatalf("re-decode %s: %v", again, err)
		}
		if h2 := in2.Hash(); h2 != h {
			t.Fatalf("hash changed after a round trip:\n%s\n%s", data, again)
		}
	})
}

func BenchmarkDecodeValidate(b *testing.B) {
	data := []byte(exampleIntent)
	c := DefaultCatalog()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		in, err := DecodeIntent(data)
		if err != nil {
			b.Fatal(err)
		}
		if err := in.Validate(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	in, err := DecodeIntent([]byte(exampleIntent))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = in.Hash()
	}
}

// wantInvalid checks that err is a *ValidationError naming field, or nil
// where field is empty (then it returns nil too).
func wantInvalid(t *testing.T, err error, field string) *ValidationError {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("want valid, got %v", err)
		}
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError on %s, got %v", field, err)
	}
	if ve.Field != field {
		t.Fatalf("field %q, want %q (%v)", ve.Field, field, err)
	}
	return ve
}
