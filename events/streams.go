package events

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamOptions tunes the three streams. Every zero value means the
// default written next to the field.
type StreamOptions struct {
	Replicas        int                   // 1 (R3 needs a cluster)
	DuplicateWindow time.Duration         // 2 minutes: how long a Nats-Msg-Id is remembered
	StatusMaxAge    time.Duration         // 24 hours of status events
	StatusMaxBytes  int64                 // 1 GiB of status events
	Storage         jetstream.StorageType // file (FileStorage is the zero value)
}

// Stream option defaults.
const (
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultStatusMaxAge    = 24 * time.Hour
	DefaultStatusMaxBytes  = 1 << 30
)

func (o StreamOptions) withDefaults() StreamOptions {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = DefaultDuplicateWindow
	}
	if o.StatusMaxAge <= 0 {
		o.StatusMaxAge = DefaultStatusMaxAge
	}
	if o.StatusMaxBytes <= 0 {
		o.StatusMaxBytes = DefaultStatusMaxBytes
	}
	return o
}

// StreamConfigs returns the intents, status and dead-letter stream
// configurations, in that order.
//
//   - Intents: work-queue retention, so an acked intent leaves the stream
//     (the store holds the order from then on) and a replay is simply a
//     new publish; the duplicate window drops a game server's retries.
//   - Status: limits retention bounded by age and size; subscribers that
//     fall further behind read the order's history from a worker instead.
//   - Dead letters: limits retention with no age limit, so nothing an
//     operator must see expires, and stock tools (nats stream view) can
//     browse it; the duplicate window keeps a relay retry from doubling one.
func StreamConfigs(s Subjects, o StreamOptions) []jetstream.StreamConfig {
	o = o.withDefaults()
	return []jetstream.StreamConfig{
		{
			Name:        s.IntentsStream(),
			Description: "coinsaga purchase intents, removed once a worker has recorded the order",
			Subjects:    []string{s.Intents()},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     o.Storage,
			Replicas:    o.Replicas,
			Duplicates:  o.DuplicateWindow,
			Discard:     jetstream.DiscardOld,
		},
		{
			Name:        s.StatusStream(),
			Description: "coinsaga order status events, one per state change",
			Subjects:    []string{s.Statuses()},
			Retention:   jetstream.LimitsPolicy,
			Storage:     o.Storage,
			Replicas:    o.Replicas,
			Duplicates:  o.DuplicateWindow,
			MaxAge:      o.StatusMaxAge,
			MaxBytes:    o.StatusMaxBytes,
			Discard:     jetstream.DiscardOld,
		},
		{
			Name:        s.DLQStream(),
			Description: "coinsaga dead letters: intents that need an operator",
			Subjects:    []string{s.DeadLetters()},
			Retention:   jetstream.LimitsPolicy,
			Storage:     o.Storage,
			Replicas:    o.Replicas,
			Duplicates:  o.DuplicateWindow,
			Discard:     jetstream.DiscardOld,
		},
	}
}

// EnsureStreams creates the streams, or brings existing ones to this
// configuration; running it again changes nothing. Every worker calls it
// at start, so the first one to run sets the streams up.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, s Subjects, o StreamOptions) error {
	for _, cfg := range StreamConfigs(s, o) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}
