package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// StreamDifference is one way an existing stream differs from what
// coinsaga would create: an operator's choice (more replicas, a longer
// age limit) or drift. EnsureStreams reports it and changes nothing.
type StreamDifference struct {
	Stream string // e.g. COINSAGA_STATUS
	Field  string // the StreamConfig field, e.g. "replicas"
	Have   string // what the stream has
	Want   string // what coinsaga would create
}

func (d StreamDifference) String() string {
	return fmt.Sprintf("stream %s: %s is %s, coinsaga would create %s; left as it is", d.Stream, d.Field, d.Have, d.Want)
}

// ErrStreamCollision: a stream coinsaga needs exists but serves other
// subjects, so using it would mix two deployments. Prefixes that differ
// only in '.', '_' or case map to the same stream names.
var ErrStreamCollision = errors.New("stream name taken by other subjects")

// ErrStreamStorage: JetStream has not the storage a new stream reserves.
var ErrStreamStorage = errors.New("not enough JetStream storage")

// EnsureStreams creates the streams that are missing and leaves existing
// ones exactly as they are: an operator may have raised their replicas or
// limits on purpose (nats stream edit), and a worker must never lower
// them. It returns how the existing streams differ from what coinsaga
// would create, for the caller to report. An existing stream that serves
// other subjects is refused with ErrStreamCollision.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, s Subjects, o StreamOptions) ([]StreamDifference, error) {
	var diffs []StreamDifference
	for _, want := range StreamConfigs(s, o) {
		st, err := js.Stream(ctx, want.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			if _, err := js.CreateStream(ctx, want); err != nil {
				return diffs, createError(want, err)
			}
			continue
		}
		if err != nil {
			return diffs, fmt.Errorf("ensure stream %s: %w", want.Name, err)
		}
		have := st.CachedInfo().Config
		if !slices.Contains(have.Subjects, want.Subjects[0]) {
			return diffs, fmt.Errorf("ensure stream %s: %w: it serves %s, not %s (prefix %q); choose a prefix whose stream names differ from the other deployment's",
				want.Name, ErrStreamCollision, strings.Join(have.Subjects, ", "), want.Subjects[0], s.prefix())
		}
		diffs = append(diffs, compareStream(have, want)...)
	}
	return diffs, nil
}

// createError names what a failed create needs: most often JetStream
// storage, which the status stream reserves in full (MaxBytes) when it is
// created.
func createError(want jetstream.StreamConfig, err error) error {
	var apiErr *jetstream.APIError
	isAPI := errors.As(err, &apiErr)
	if isAPI && (apiErr.ErrorCode == errCodeInsufficientResources || apiErr.ErrorCode == errCodeStorageExceeded) {
		need := "no byte limit"
		if want.MaxBytes > 0 {
			need = fmt.Sprintf("%s (its max bytes)", FormatBytes(want.MaxBytes))
		}
		return fmt.Errorf("create stream %s: %w: it reserves %s: %w", want.Name, ErrStreamStorage, need, err)
	}
	if isAPI && apiErr.ErrorCode == errCodeSubjectOverlap {
		return fmt.Errorf("create stream %s: %w: %s overlaps the subjects of another stream; choose another prefix: %w",
			want.Name, ErrStreamCollision, want.Subjects[0], err)
	}
	return fmt.Errorf("create stream %s: %w", want.Name, err)
}

// JetStream API error codes the jetstream package has no constant for
// (nats-server's server/errors.json).
const (
	errCodeInsufficientResources jetstream.ErrorCode = 10023 // JSInsufficientResourcesErr
	errCodeStorageExceeded       jetstream.ErrorCode = 10047 // JSStorageResourcesExceededErr
	errCodeSubjectOverlap        jetstream.ErrorCode = 10065 // JSStreamSubjectOverlapErr
)

// compareStream lists the settings in which have differs from want.
func compareStream(have, want jetstream.StreamConfig) []StreamDifference {
	var diffs []StreamDifference
	add := func(field string, differ bool, h, w any) {
		if differ {
			diffs = append(diffs, StreamDifference{Stream: want.Name, Field: field, Have: fmt.Sprint(h), Want: fmt.Sprint(w)})
		}
	}
	add("replicas", have.Replicas != want.Replicas, have.Replicas, want.Replicas)
	add("retention", have.Retention != want.Retention, have.Retention, want.Retention)
	add("storage", have.Storage != want.Storage, have.Storage, want.Storage)
	add("duplicate window", have.Duplicates != want.Duplicates, have.Duplicates, want.Duplicates)
	// The server reports "no limit" as 0 or -1.
	add("max age", ageText(have.MaxAge) != ageText(want.MaxAge), ageText(have.MaxAge), ageText(want.MaxAge))
	add("max bytes", bytesText(have.MaxBytes) != bytesText(want.MaxBytes), bytesText(have.MaxBytes), bytesText(want.MaxBytes))
	add("discard", have.Discard != want.Discard, have.Discard, want.Discard)
	if len(have.Subjects) > 1 {
		add("subjects", true, strings.Join(have.Subjects, ", "), want.Subjects[0])
	}
	return diffs
}

func ageText(d time.Duration) string {
	if d <= 0 {
		return "unlimited"
	}
	return d.String()
}

func bytesText(n int64) string {
	if n <= 0 {
		return "unlimited"
	}
	return FormatBytes(n)
}

// FormatBytes prints n in the largest binary unit that keeps it readable:
// 1 GiB, 512 MiB, 1.5 KiB.
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, u := float64(n), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".") + " " + units[u]
}
