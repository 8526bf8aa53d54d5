package console

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/coinsaga/coinsaga/events"
)

// Serve is what `coinsaga serve` hands the console.
type Serve struct {
	Conn     *nats.Conn
	Subjects events.Subjects
	Orders   Orders
	Metrics  prometheus.Gatherer
	Logger   *slog.Logger
}

// Handler builds the console for serve with the access Check found; its
// background sampling stops with ctx. With --console=false it is nil.
func (f *Flags) Handler(ctx context.Context, s Serve) (http.Handler, error) {
	if f.Off {
		return nil, nil
	}
	js, err := jetstream.New(s.Conn)
	if err != nil {
		return nil, fmt.Errorf("console: jetstream: %w", err)
	}
	c, err := New(ctx, Config{
		Orders:      s.Orders,
		DeadLetters: NATSDeadLetters(s.Conn, s.Subjects),
		Status:      NATSStatus(js, s.Subjects),
		Metrics:     s.Metrics,
		Access:      f.access,
		Logger:      s.Logger,
	})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(f.access.Tokens))
	for _, t := range f.access.Tokens {
		names = append(names, t.Name)
	}
	s.Logger.Info("console at /", "reads_open", f.access.OpenReads, "tokens", names, "replay_and_purge", len(names) > 0)
	return c, nil
}
