package console

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/store"
)

// pumpStatus is a StatusSource whose one watch delivers n copies of an
// event, then ends.
type pumpStatus struct {
	n     int
	event events.Watched
}

func (p *pumpStatus) Watch(context.Context, events.WatchFilter) (StatusStream, error) {
	return &pump{left: int64(p.n), ev: p.event}, nil
}

type pump struct {
	left int64
	ev   events.Watched
}

func (p *pump) Next(ctx context.Context) (events.Watched, error) {
	if atomic.AddInt64(&p.left, -1) < 0 {
		return events.Watched{}, context.Canceled
	}
	return p.ev, ctx.Err()
}

func (p *pump) Stop() {}

// countingWriter is a flushing ResponseWriter that keeps nothing.
type countingWriter struct {
	h     http.Header
	bytes int
}

func (c *countingWriter) Header() http.Header         { return c.h }
func (c *countingWriter) Write(p []byte) (int, error) { c.bytes += len(p); return len(p), nil }
func (c *countingWriter) WriteHeader(int)             {}
func (c *countingWriter) Flush()                      {}

// BenchmarkLiveFeedPerEvent is the server's CPU per status event of one
// open live feed (the watch's own decoding aside), to set against the CPU
// an order costs the worker (docs/performance.md).
func BenchmarkLiveFeedPerEvent(b *testing.B) {
	raw := []byte(`{"out_order_id":"1659497694000","order_id":"1795306795555000001","mg_id":"1468180338417074177","room_id":"9009","from_uid":"001","state":"debited","seq":3,"at":"2026-11-21T10:00:00.123456Z","provider":"mogs","bill_no":"1659497694000","amount":100,"balance":999900}`)
	ev := events.Watched{Raw: raw, Subject: "coinsaga.status.1468180338417074177.9009.1659497694000", Seq: 7,
		Event: events.StatusEvent{OutOrderID: "1659497694000", State: events.StateDebited, Seq: 3, At: time.Now()}}
	const perRequest = 10000
	src := &pumpStatus{n: perRequest, event: ev}
	c, err := New(context.Background(), Config{Orders: &fakeOrders{orders: map[string]store.Order{}}, Status: src, Access: Access{OpenReads: true}})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/live/events", nil)
	var sent int
	for b.Loop() {
		w := &countingWriter{h: http.Header{}}
		c.ServeHTTP(w, req)
		sent += w.bytes
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perRequest), "ns/event")
	if sent == 0 {
		b.Fatal(fmt.Sprint("nothing was written"))
	}
}
