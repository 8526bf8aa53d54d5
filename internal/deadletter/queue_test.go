package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/kit"
)

const gameA, gameB, room = "1468180338417074177", "1472142747708284929", "9009"

// env is JetStream on port 0 with the coinsaga streams and no worker.
type env struct {
	t   *testing.T
	jet *kit.JetStream
	s   events.Subjects
	q   *Queue
}

func newEnv(t *testing.T) *env {
	t.Helper()
	jet := kit.StartJetStream(t).EnsureStreams(t)
	q, err := Open(context.Background(), jet.Conn, jet.Subjects)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, jet: jet, s: jet.Subjects, q: q}
}

// intent is a MOGS intent's body, the player's js_code in it.
func intent(mg, id string) []byte {
	in := events.Intent{OutOrderID: id, MgID: mg, RoomID: room, Cmd: "specify_dice_roll", FromUID: "001", ToUID: "002",
		Value: 100, Payment: events.Payment{Provider: "mogs", Amount: 10, OpenID: "p-" + id,
			MOGS: &events.MOGSPayment{JSCode: "js-secret-" + id, PayItem: "dice"}}}
	body, _ := json.Marshal(in)
	return body
}

// put stores a dead letter the way the worker writes one; an empty id
// puts it on the invalid subject, where no order exists.
func (e *env) put(mg, id string, d events.DeadLetter, body []byte) uint64 {
	e.t.Helper()
	subject := e.s.DeadLetterInvalid()
	if id != "" {
		subject = e.s.DeadLetter(mg, room, id)
	}
	if d.OriginalSubject == "" && mg != "" {
		d.OriginalSubject = e.s.Intent(mg, room)
	}
	m := nats.NewMsg(subject)
	m.Header = events.DeadLetterHeaders(d)
	m.Data = body
	ack, err := e.jet.JS.PublishMsg(context.Background(), m)
	if err != nil {
		e.t.Fatal(err)
	}
	return ack.Sequence
}

func (e *env) failed(mg, id string, failedAt time.Time) uint64 {
	return e.put(mg, id, events.DeadLetter{Reason: events.ReasonFailed, State: "failed", Attempts: 3,
		Error: "retries_exhausted: busy", FailedAt: failedAt}, intent(mg, id))
}

func (e *env) msgs(stream string) uint64 {
	e.t.Helper()
	n, _ := e.jet.StreamState(e.t, stream)
	return n
}

func seqsOf(letters []Letter) []uint64 {
	var out []uint64
	for _, l := range letters {
		out = append(out, l.Seq)
	}
	return out
}

func TestOpenWithoutAStreamIsErrNoStream(t *testing.T) {
	t.Parallel()
	jet := kit.StartJetStream(t)
	if _, err := Open(context.Background(), jet.Conn, events.Subjects{Prefix: "nobody"}); !errors.Is(err, ErrNoStream) {
		t.Errorf("Open = %v, want ErrNoStream", err)
	}
}

func TestListSelectsWhatTheFilterSays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now()
	a1 := e.failed(gameA, "a1", now)
	a2 := e.put(gameA, "a2", events.DeadLetter{Reason: events.ReasonNeedsAttention, State: "needs_attention",
		Error: "bill_expired: too old", FailedAt: now}, intent(gameA, "a2"))
	bOld := e.failed(gameB, "b-old", now.Add(-3*time.Hour))
	bNew := e.failed(gameB, "b-new", now)
	inv := e.put("", "", events.DeadLetter{Reason: events.ReasonInvalid, Error: "invalid JSON", FailedAt: now}, []byte("{not json"))
	all := []uint64{a1, a2, bOld, bNew, inv}

	tests := []struct {
		name   string
		filter Filter
		want   []uint64
	}{
		{"no filter lists every letter oldest first", Filter{}, all},
		{"a reason", Filter{Reasons: []events.Reason{events.ReasonFailed}}, []uint64{a1, bOld, bNew}},
		{"two reasons", Filter{Reasons: []events.Reason{events.ReasonNeedsAttention, events.ReasonInvalid}}, []uint64{a2, inv}},
		{"a game", Filter{MgID: gameB}, []uint64{bOld, bNew}},
		{"an order", Filter{OutOrderID: "a2"}, []uint64{a2}},
		{"since drops letters whose order failed before it", Filter{Since: now.Add(-time.Hour)}, []uint64{a1, a2, bNew, inv}},
		{"a game and since", Filter{MgID: gameB, Since: now.Add(-time.Hour)}, []uint64{bNew}},
		{"a limit keeps the oldest", Filter{Limit: 2}, []uint64{a1, a2}},
		{"seqs in any order come back ascending", Filter{Seqs: []uint64{bNew, a1, bNew}}, []uint64{a1, bNew}},
		{"seqs and a reason", Filter{Seqs: []uint64{a1, a2}, Reasons: []events.Reason{events.ReasonNeedsAttention}}, []uint64{a2}},
		{"a game no letter has", Filter{MgID: "1"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			letters, err := e.q.List(ctx, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := seqsOf(letters); !slices.Equal(got, tc.want) {
				t.Errorf("List = %v, want %v", got, tc.want)
			}
			n, err := e.q.Count(ctx, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			if tc.filter.Limit == 0 && n != len(tc.want) {
				t.Errorf("Count = %d, want %d", n, len(tc.want))
			}
			if tc.filter.Limit > 0 && n != len(all) {
				t.Errorf("Count with a limit = %d, want every letter (%d)", n, len(all))
			}
		})
	}

	t.Run("a listing carries headers and sizes but no body unless asked", func(t *testing.T) {
		t.Parallel()
		letters, err := e.q.List(ctx, Filter{Seqs: []uint64{a1}})
		if err != nil || len(letters) != 1 {
			t.Fatalf("%v %v", letters, err)
		}
		l := letters[0]
		if l.Body != "" || l.Raw() != nil || l.Size != len(intent(gameA, "a1")) || l.Code != "retries_exhausted" ||
			l.MgID != gameA || l.RoomID != room || l.OutOrderID != "a1" || l.Attempts != 3 || l.State != "failed" {
			t.Errorf("listed %+v", l)
		}
		got, err := e.q.List(ctx, Filter{MgID: gameA}, Bodies())
		if err != nil || len(got) != 2 {
			t.Fatalf("%v %v", got, err)
		}
		for _, l := range got {
			if !strings.Contains(l.Body, `"***"`) || strings.Contains(l.Body, "js-secret") || !strings.Contains(string(l.Raw()), "js-secret") {
				t.Errorf("seq %d body %q", l.Seq, l.Body)
			}
		}
	})
	t.Run("pages follow one another with After", func(t *testing.T) {
		t.Parallel()
		var got []uint64
		var after uint64
		for page := 0; page < 10; page++ {
			letters, err := e.q.List(ctx, Filter{Limit: 2}, After(after))
			if err != nil {
				t.Fatal(err)
			}
			if len(letters) == 0 {
				break
			}
			got = append(got, seqsOf(letters)...)
			after = letters[len(letters)-1].Seq
		}
		if !slices.Equal(got, all) {
			t.Errorf("pages gave %v, want %v", got, all)
		}
		if n, err := e.q.Count(ctx, Filter{}, After(a2)); err != nil || n != 3 {
			t.Errorf("Count after %d = %d, %v; want 3", a2, n, err)
		}
		if letters, err := e.q.List(ctx, Filter{Seqs: all}, After(bOld)); err != nil || !slices.Equal(seqsOf(letters), []uint64{bNew, inv}) {
			t.Errorf("seqs after %d = %v, %v", bOld, seqsOf(letters), err)
		}
	})
	t.Run("a seq that names no letter is reported and skipped", func(t *testing.T) {
		t.Parallel()
		var missing []uint64
		letters, err := e.q.List(ctx, Filter{Seqs: []uint64{a1, 999}}, OnMissing(func(seq uint64) { missing = append(missing, seq) }))
		if err != nil || !slices.Equal(seqsOf(letters), []uint64{a1}) || !slices.Equal(missing, []uint64{999}) {
			t.Errorf("List = %v, %v; missing %v", seqsOf(letters), err, missing)
		}
	})
	t.Run("a filter that would widen the subject is refused", func(t *testing.T) {
		t.Parallel()
		if _, err := e.q.List(ctx, Filter{MgID: "*"}); !errors.Is(err, ErrBadFilter) {
			t.Errorf("List = %v, want ErrBadFilter", err)
		}
	})
}

func TestGetMasksTheBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	body := intent(gameA, "g1")
	seq := e.failed(gameA, "g1", time.Now())
	l, err := e.q.Get(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(l.Body, `"***"`) || strings.Contains(l.Body, "js-secret") || string(l.Raw()) != string(body) ||
		l.Header.Get(events.HeaderReason) != "failed" || l.Size != len(body) {
		t.Errorf("Get = %+v", l)
	}
	if _, err := e.q.Get(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a missing seq = %v, want ErrNotFound", err)
	}
}

// replayCase is one letter of the replay tests, with what becomes of it.
type replayCase struct {
	id    string
	seq   uint64
	state events.State // what the workers say of the order
	want  Outcome
}

// putReplayCases stores one letter per outcome of the replay policy.
func putReplayCases(e *env) []replayCase {
	now := time.Now()
	truncated := intent(gameA, "cut")
	cases := []replayCase{
		{id: "retry", want: Replayed},
		{id: "compensated", state: events.StateCompensated, want: Replayed},
		{id: "done", state: events.StateCompleted, want: AlreadyCompleted},
		{id: "busy", state: events.StateDebited, want: SkippedInProgress},
		{id: "cut", want: SkippedTruncated},
		{id: "twin", want: SkippedUnreplayable},
		{id: "lost", want: Failed},
	}
	for i := range cases {
		c := &cases[i]
		switch c.id {
		case "cut":
			c.seq = e.put(gameA, c.id, events.DeadLetter{Reason: events.ReasonRejected, State: "rejected", FailedAt: now,
				TruncatedFrom: len(truncated)}, truncated[:len(truncated)/2])
		case "twin":
			c.seq = e.put(gameA, c.id, events.DeadLetter{Reason: events.ReasonConflict, FailedAt: now}, intent(gameA, c.id))
		case "lost":
			c.seq = e.put(gameA, c.id, events.DeadLetter{Reason: events.ReasonFailed, State: "failed", FailedAt: now,
				OriginalSubject: "elsewhere.intents.x.y"}, []byte(`{"out_order_id":"lost"}`))
		default:
			c.seq = e.failed(gameA, c.id, now)
		}
	}
	return cases
}

func statesOf(cases []replayCase) StateFunc {
	return func(_ context.Context, id string) (events.State, error) {
		for _, c := range cases {
			if c.id == id {
				return c.state, nil
			}
		}
		return "", nil
	}
}

func TestReplayDryRunSaysWhatWouldHappenAndChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := putReplayCases(e)
	var progress []Progress
	rep, err := e.q.Replay(context.Background(), Filter{}, DryRun(), OrderStates(statesOf(cases)),
		OnProgress(func(p Progress) { progress = append(progress, p) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("each letter gets the outcome the policy gives it", func(t *testing.T) {
		if len(rep.Results) != len(cases) || rep.Total != len(cases) || !rep.DryRun {
			t.Fatalf("report %+v", rep)
		}
		for i, c := range cases {
			r := rep.Results[i]
			if r.Letter.Seq != c.seq || r.Outcome != c.want || !r.DryRun {
				t.Errorf("%s: seq %d outcome %s, want seq %d %s (%v)", c.id, r.Letter.Seq, r.Outcome, c.seq, c.want, r.Err)
			}
		}
		if rep.Replayed != 2 || rep.Completed != 1 || rep.Skipped != 3 || rep.Failed != 1 {
			t.Errorf("counts %+v", rep)
		}
	})
	t.Run("a replayed intent would go back to its original subject", func(t *testing.T) {
		if got := rep.Results[0].Subject; got != e.s.Intent(gameA, room) {
			t.Errorf("subject %q", got)
		}
		if !errors.Is(rep.Results[6].Err, ErrNoTarget) {
			t.Errorf("a letter with no intents subject failed with %v", rep.Results[6].Err)
		}
	})
	t.Run("progress is reported once at the start and after each letter", func(t *testing.T) {
		if len(progress) != len(cases)+1 || progress[0].Done != 0 || progress[0].Total != len(cases) {
			t.Fatalf("progress %+v", progress)
		}
		for i, p := range progress[1:] {
			if p.Done != i+1 || p.Result.Letter.Seq != cases[i].seq {
				t.Errorf("progress %d: %+v", i+1, p)
			}
		}
	})
	t.Run("no letter is removed and nothing is published", func(t *testing.T) {
		if n := e.msgs(e.s.DLQStream()); n != uint64(len(cases)) {
			t.Errorf("%d letters left, want %d", n, len(cases))
		}
		if n := e.msgs(e.s.IntentsStream()); n != 0 {
			t.Errorf("%d intents published", n)
		}
	})
}

func TestReplayRepublishesAndRemoves(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	cases := putReplayCases(e)
	rep, err := e.q.Replay(ctx, Filter{}, OrderStates(statesOf(cases)))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		if r := rep.Results[i]; r.Outcome != c.want || r.DryRun {
			t.Errorf("%s: %s, want %s (%v)", c.id, r.Outcome, c.want, r.Err)
		}
	}
	dlq, _ := e.jet.JS.Stream(ctx, e.s.DLQStream())
	t.Run("replayed and completed letters are removed, the others stay", func(t *testing.T) {
		for _, c := range cases {
			_, err := dlq.GetMsg(ctx, c.seq)
			gone := errors.Is(err, jetstream.ErrMsgNotFound)
			if want := c.want == Replayed || c.want == AlreadyCompleted; gone != want {
				t.Errorf("%s: removed %v, want %v (%v)", c.id, gone, want, err)
			}
		}
	})
	t.Run("each replay is the original bytes with a Nats-Msg-Id of its own", func(t *testing.T) {
		intents, _ := e.jet.JS.Stream(ctx, e.s.IntentsStream())
		if n := e.msgs(e.s.IntentsStream()); n != 2 {
			t.Fatalf("%d intents published, want 2", n)
		}
		for i, c := range cases[:2] {
			m, err := intents.GetMsg(ctx, uint64(i+1))
			if err != nil {
				t.Fatal(err)
			}
			seq := strconv.FormatUint(c.seq, 10)
			if m.Subject != e.s.Intent(gameA, room) || string(m.Data) != string(intent(gameA, c.id)) ||
				m.Header.Get(events.HeaderMsgID) != c.id+":replay:"+seq || m.Header.Get(events.HeaderReplay) != seq {
				t.Errorf("%s: republished %s %v %s", c.id, m.Subject, m.Header, m.Data)
			}
		}
	})
	t.Run("the completed order's intent is not published again", func(t *testing.T) {
		if rep.Results[2].State != events.StateCompleted || rep.Results[2].Message() != "already completed: nothing will be charged; dead letter removed" {
			t.Errorf("%+v: %s", rep.Results[2], rep.Results[2].Message())
		}
	})
	t.Run("a second run finds only the letters that stayed", func(t *testing.T) {
		again, err := e.q.Replay(ctx, Filter{}, OrderStates(statesOf(cases)))
		if err != nil {
			t.Fatal(err)
		}
		if again.Total != 4 || again.Replayed != 0 || again.Completed != 0 {
			t.Errorf("second run %+v", again)
		}
	})
}

func TestReplayAsksTheWorkersForOrderStates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	done := e.failed(gameA, "done", time.Now())
	e.failed(gameA, "other", time.Now())

	t.Run("without a worker it warns once and replays anyway", func(t *testing.T) {
		rep, err := e.q.Replay(ctx, Filter{}, DryRun())
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Results) != 2 || rep.Results[0].StateErr == nil || rep.Results[1].StateErr != nil || rep.Replayed != 2 {
			t.Errorf("results %+v", rep.Results)
		}
	})
	t.Run("a worker that has the order is believed", func(t *testing.T) {
		sub, err := e.jet.Conn.Subscribe(e.s.OrderGetAPI(), func(m *nats.Msg) {
			var req struct {
				OutOrderID string `json:"out_order_id"`
			}
			_ = json.Unmarshal(m.Data, &req)
			reply := fmt.Sprintf(`{"error":"order %s not found"}`, req.OutOrderID)
			if req.OutOrderID == "done" {
				reply = `{"order":{"out_order_id":"done","state":"completed"}}`
			}
			_ = m.Respond([]byte(reply))
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := e.jet.Conn.Flush(); err != nil {
			t.Fatal(err)
		}
		rep, err := e.q.Replay(ctx, Filter{}, DryRun(), OrderTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Results) != 2 || rep.Results[0].Letter.Seq != done || rep.Results[0].Outcome != AlreadyCompleted ||
			rep.Results[1].Outcome != Replayed || rep.Results[1].StateErr != nil || rep.Results[1].State != "" {
			t.Errorf("results %+v", rep.Results)
		}
	})
}

func TestReplayStopsWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := 0; i < 3; i++ {
		e.failed(gameA, fmt.Sprintf("o%d", i), time.Now())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep, err := e.q.Replay(ctx, Filter{}, OrderStates(statesOf(nil)), OnProgress(func(p Progress) {
		if p.Done == 1 {
			cancel()
		}
	}))
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Errorf("Replay = %v, want ErrInterrupted and context.Canceled", err)
	}
	if len(rep.Results) != 1 || rep.Total != 3 || rep.Replayed != 1 {
		t.Errorf("report %+v", rep)
	}
	if n := e.msgs(e.s.DLQStream()); n != 2 {
		t.Errorf("%d letters left, want the 2 not reached", n)
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	a := e.failed(gameA, "a", time.Now())
	b1 := e.failed(gameB, "b1", time.Now())
	b2 := e.failed(gameB, "b2", time.Now())

	if _, err := e.q.Purge(ctx, Filter{Limit: 5}); !errors.Is(err, ErrUnfiltered) {
		t.Errorf("Purge with only a limit = %v, want ErrUnfiltered", err)
	}
	rep, err := e.q.Purge(ctx, Filter{MgID: gameB}, DryRun())
	if err != nil || rep.Purged != 2 || !slices.Equal(seqsOf(lettersOf(rep)), []uint64{b1, b2}) || e.msgs(e.s.DLQStream()) != 3 {
		t.Errorf("dry run: %+v, %v; %d letters left", rep, err, e.msgs(e.s.DLQStream()))
	}
	var missing []uint64
	rep, err = e.q.Purge(ctx, Filter{Seqs: []uint64{b1, 999}}, OnMissing(func(seq uint64) { missing = append(missing, seq) }))
	if err != nil || rep.Purged != 1 || !slices.Equal(missing, []uint64{999}) {
		t.Errorf("purge by seq: %+v, %v, missing %v", rep, err, missing)
	}
	rep, err = e.q.Purge(ctx, Filter{}, All())
	if err != nil || !slices.Equal(seqsOf(lettersOf(rep)), []uint64{a, b2}) || e.msgs(e.s.DLQStream()) != 0 {
		t.Errorf("purge all: %+v, %v", rep, err)
	}
}

func lettersOf(rep Report) []Letter {
	var out []Letter
	for _, r := range rep.Results {
		out = append(out, r.Letter)
	}
	return out
}
