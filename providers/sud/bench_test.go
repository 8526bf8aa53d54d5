package sud_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/coinsaga/coinsaga/providers/sud"
)

// The benchmarks measure one client call over loopback HTTP against the
// sandbox, connection reuse included; the sandbox's own work is in the
// figures too.

func BenchmarkCreateOrder(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := e.client.CreateOrder(ctx, order("bench-"+strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkQueryOrder(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	if _, err := e.client.CreateOrder(ctx, order("bench-query")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.client.QueryOrder(ctx, "bench-query"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	body := []byte(`{"out_order_id":"1659497694000","out_group_id":"1659497694","mg_id":"1461228379255603251","room_id":"9009","cmd":"add_score","from_uid":"001","to_uid":"002","value":100}`)
	b.ReportAllocs()
	for b.Loop() {
		sud.AuthorizationHeader(appSecret, appID, "1700000000", "nonce", body)
	}
}
