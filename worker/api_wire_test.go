package worker

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/store"
)

// fill sets every exported field of the struct v points at to a value of
// its own, distinct from the zero value and from the other fields.
func fill(t *testing.T, v any) {
	t.Helper()
	s := reflect.ValueOf(v).Elem()
	at := time.Date(2026, 12, 2, 6, 19, 13, 0, time.UTC)
	for i := range s.NumField() {
		f := s.Field(i)
		if !f.CanSet() {
			continue
		}
		switch f.Interface().(type) {
		case time.Time:
			f.Set(reflect.ValueOf(at.Add(time.Duration(i) * time.Second)))
			continue
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString("v" + s.Type().Field(i).Name)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(100 + i))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Slice:
			f.SetBytes([]byte("secret intent"))
		default:
			t.Fatalf("fill: field %s of kind %s", s.Type().Field(i).Name, f.Kind())
		}
	}
}

func jsonObject(t *testing.T, v any) map[string]any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTheOrderAPISendsWhatItAlwaysSent pins the order API's wire type to
// the JSON it sent when it sent store.Order itself: the same keys with
// the same values, and never the intent.
func TestTheOrderAPISendsWhatItAlwaysSent(t *testing.T) {
	t.Parallel()
	wantOrderKeys := []string{
		"amount", "attempt", "baseline_balance", "baseline_cost_sum", "baseline_gen_balance", "baseline_save_amt",
		"bill_no", "created_at", "debited_at", "error", "error_code", "first_pay_at", "from_uid", "has_baseline",
		"has_pay_balance", "mg_id", "next_run_at", "ordered_at", "out_order_id", "pay_balance", "pay_generation",
		"pay_unknown", "provider", "room_id", "seq", "state", "step", "sud_order_id", "sud_status", "updated_at",
		"used_gen_amt", "version",
	}
	var o store.Order
	fill(t, &o)
	var h store.HistoryEntry
	fill(t, &h)
	cases := []struct {
		name     string
		store    any
		wire     any
		wantKeys []string
	}{
		{"an order has the keys and values of the store's order", o, orderView(o), wantOrderKeys},
		{"a history entry has the keys and values of the store's entry", h, historyView([]store.HistoryEntry{h})[0],
			[]string{"at", "attempt", "detail", "error", "error_code", "state", "step"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stored, sent := jsonObject(t, c.store), jsonObject(t, c.wire)
			var keys []string
			for k, v := range sent {
				keys = append(keys, k)
				if !reflect.DeepEqual(v, stored[k]) {
					t.Errorf("%s: sent %v, the store's JSON has %v", k, v, stored[k])
				}
			}
			slices.Sort(keys)
			if !slices.Equal(keys, c.wantKeys) {
				t.Errorf("keys sent:\n%q\nwant:\n%q", keys, c.wantKeys)
			}
		})
	}
	t.Run("the intent is never sent", func(t *testing.T) {
		data, err := json.Marshal(orderView(o))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "secret intent") {
			t.Errorf("the reply carries the intent: %s", data)
		}
	})
	t.Run("no history is sent as none", func(t *testing.T) {
		if historyView(nil) != nil {
			t.Error("an order without history sends an empty list, not none")
		}
	})
}
