package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/embednats"
	"github.com/coinsaga/coinsaga/internal/kit"
)

// publishEnv is an embedded server with coinsaga's streams, for publish
// and watch.
type publishEnv struct {
	url string
	ns  *embednats.Server
	js  jetstream.JetStream
	s   events.Subjects
	jet *kit.JetStream
}

func startPublishEnv(t *testing.T) *publishEnv {
	t.Helper()
	jet := kit.StartJetStream(t).EnsureStreams(t)
	return &publishEnv{url: jet.URL, ns: jet.Server, js: jet.JS, s: jet.Subjects, jet: jet}
}

// stored returns the intents stream's messages by out_order_id.
func (e *publishEnv) stored(t *testing.T) map[string]*jetstream.RawStreamMsg {
	t.Helper()
	out := map[string]*jetstream.RawStreamMsg{}
	for _, m := range e.jet.Messages(t, e.s.IntentsStream()) {
		out[m.Header.Get(events.HeaderMsgID)] = m
	}
	return out
}

// runPublishTest runs publish with stdin as standard input (not a
// terminal) and returns stdout, stderr and the error.
func runPublishTest(t *testing.T, stdin io.Reader, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := publish(ctx, args, stdin, false, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func intentLine(t *testing.T, id string) string {
	t.Helper()
	b, err := json.Marshal(testIntent(id, "mogs", 10))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func intentPretty(t *testing.T, id string) string {
	t.Helper()
	b, err := json.MarshalIndent(testIntent(id, "mogs", 10), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPublishReadsIntentsHoweverTheyAreLaidOut(t *testing.T) {
	t.Parallel()
	e := startPublishEnv(t)
	for _, c := range []struct {
		name  string
		ids   []string
		input func(ids []string) string
	}{
		{"JSON lines are published one intent per line", []string{"jl-1", "jl-2", "jl-3"}, func(ids []string) string {
			return intentLine(t, ids[0]) + "\n" + intentLine(t, ids[1]) + "\r\n\n" + intentLine(t, ids[2])
		}},
		{"one pretty-printed intent is published whole", []string{"pretty-1"}, func(ids []string) string {
			return intentPretty(t, ids[0]) + "\n"
		}},
		{"pretty-printed intents one after another are each published", []string{"pretty-2", "pretty-3"}, func(ids []string) string {
			return intentPretty(t, ids[0]) + "\n\n" + intentPretty(t, ids[1])
		}},
		{"intents one after another on one line are each published", []string{"same-line-1", "same-line-2"}, func(ids []string) string {
			return intentLine(t, ids[0]) + " " + intentLine(t, ids[1]) + "\n"
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, from := range []string{"standard input", "a file"} {
				ids := make([]string, len(c.ids))
				for i, id := range c.ids {
					ids[i] = id + "-" + strings.ReplaceAll(from, " ", "-")
				}
				input := c.input(ids)
				args := []string{"--nats-url", e.url}
				stdin := io.Reader(strings.NewReader(input))
				if from == "a file" {
					path := filepath.Join(t.TempDir(), "intents.json")
					if err := os.WriteFile(path, []byte(input), 0o600); err != nil {
						t.Fatal(err)
					}
					args, stdin = append(args, "--file", path), strings.NewReader("")
				}
				stdout, stderr, err := runPublishTest(t, stdin, args...)
				if err != nil {
					t.Fatalf("from %s: %v\nstdout: %s\nstderr: %s", from, err, stdout, stderr)
				}
				stored := e.stored(t)
				for _, id := range ids {
					if !strings.Contains(stdout, "published "+id+" stream COINSAGA_INTENTS") {
						t.Errorf("from %s: stdout does not report %s:\n%s", from, id, stdout)
					}
					m, ok := stored[id]
					if !ok {
						t.Errorf("from %s: %s not stored", from, id)
						continue
					}
					if bytes.ContainsAny(m.Data, "\n\r") {
						t.Errorf("from %s: %s stored with line breaks: %s", from, id, m.Data)
					}
				}
			}
		})
	}
}

func TestPublishReportsEachBadIntentAndPublishesTheRest(t *testing.T) {
	t.Parallel()
	e := startPublishEnv(t)
	oversize := testIntent("too-big", "mogs", 10)
	oversize.Payload = json.RawMessage(`{"point":6,"seq":1,"pad":"` + strings.Repeat("x", 100<<10) + `"}`)
	big, _ := json.Marshal(oversize)
	var noPayment map[string]any
	_ = json.Unmarshal([]byte(intentLine(t, "no-payment")), &noPayment)
	delete(noPayment, "payment")
	noPay, _ := json.Marshal(noPayment)
	input := strings.Join([]string{
		intentLine(t, "good-1"),
		string(big),
		string(noPay),
		"42",
		"[" + intentLine(t, "in-an-array") + "]",
		intentPretty(t, "good-2"),
	}, "\n")
	stdout, _, err := runPublishTest(t, strings.NewReader(input), "--nats-url", e.url)
	t.Logf("$ coinsaga publish < intents.json\n%s", stdout)
	for _, c := range []struct{ name, want string }{
		{"the first good intent is published", "published good-1 stream"},
		{"an oversize intent is one line naming its place and its size against the limit",
			fmt.Sprintf("refused intent 2, line 2: invalid intent: %d bytes exceeds the %d-byte limit", len(big), events.MaxIntentSize)},
		{"a missing payment block is called missing", "refused no-payment (intent 3, line 3): rejected intent: payment is missing"},
		{"a value that is not an object is named by its place", "refused intent 4, line 4: not a JSON object"},
		{"an array is refused with what to write instead", "refused intent 5, line 5: a JSON array: write the intents one after another"},
		{"the intent after them is still published", "published good-2 stream"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(stdout, c.want+"") {
				t.Errorf("stdout does not say %q:\n%.2000s", c.want, stdout)
			}
		})
	}
	t.Run("one line is printed per intent", func(t *testing.T) {
		if n := strings.Count(stdout, "\n"); n != 6 {
			t.Errorf("%d lines for 6 intents:\n%.2000s", n, stdout)
		}
	})
	t.Run("the exit says how many were refused", func(t *testing.T) {
		if err == nil || err.Error() != "4 of 6 intents refused" {
			t.Errorf("error %v, want 4 of 6 intents refused", err)
		}
	})
	t.Run("only the good intents are stored", func(t *testing.T) {
		stored := e.stored(t)
		if len(stored) != 2 || stored["good-1"] == nil || stored["good-2"] == nil {
			t.Errorf("stored %d intents, want good-1 and good-2", len(stored))
		}
	})
}

func TestPublishStopsAtJSONItCannotReadOn(t *testing.T) {
	t.Parallel()
	e := startPublishEnv(t)
	for _, c := range []struct {
		name, input, says, exit string
	}{
		{"a syntax error is named by its line and ends the input",
			intentLine(t, "before-syntax") + "\n" + `{"out_order_id": "x", "secret": oops}` + "\n" + intentLine(t, "after-syntax"),
			"refused intent 2: malformed JSON at line 2\n", "1 of 2 intents refused; the rest of standard input was not read"},
		{"a syntax error deep in a pretty-printed intent is named by its own line",
			intentPretty(t, "before-deep") + "\n{\n  \"out_order_id\": \"x\",\n  \"value\": ,\n}\n" + intentLine(t, "after-deep"),
			fmt.Sprintf("refused intent 2: malformed JSON at line %d\n", strings.Count(intentPretty(t, "before-deep"), "\n")+4),
			"1 of 2 intents refused; the rest of standard input was not read"},
		{"input that ends inside an intent says so",
			intentLine(t, "before-cut") + "\n" + intentLine(t, "cut")[:40],
			"refused intent 2: the input ends inside this intent", "1 of 2 intents refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			stdout, _, err := runPublishTest(t, strings.NewReader(c.input), "--nats-url", e.url)
			t.Logf("stdout:\n%serror: %v", stdout, err)
			if !strings.Contains(stdout, c.says) {
				t.Errorf("stdout does not say %q:\n%s", c.says, stdout)
			}
			if strings.Contains(stdout, "oops") {
				t.Errorf("the refusal quotes the input:\n%s", stdout)
			}
			if err == nil || err.Error() != c.exit {
				t.Errorf("error %v, want %q", err, c.exit)
			}
			if !strings.Contains(stdout, "published before-") {
				t.Errorf("the intent before the bad JSON was not published:\n%s", stdout)
			}
			if strings.Contains(stdout, "after-") {
				t.Errorf("an intent after the bad JSON was reported:\n%s", stdout)
			}
		})
	}
}

// endless is a JSON string that never ends.
type endless struct{ read int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.read += int64(len(p))
	return len(p), nil
}

func TestPublishRefusesAValueTooLargeToHoldWithoutReadingItAll(t *testing.T) {
	t.Parallel()
	e := startPublishEnv(t)
	tail := &endless{}
	input := io.MultiReader(strings.NewReader(intentLine(t, "before-endless")+"\n"+`{"pad":"`), tail)
	stdout, _, err := runPublishTest(t, input, "--nats-url", e.url)
	if want := "refused intent 2: more than 16 MiB after line 1 without the end of this JSON value"; !strings.Contains(stdout, want) {
		t.Errorf("stdout does not say %q:\n%s", want, stdout)
	}
	if err == nil || !strings.Contains(err.Error(), "was not read") {
		t.Errorf("error %v", err)
	}
	if tail.read > 2*events.MaxValueBuffered {
		t.Errorf("read %d bytes of the endless value, want about %d", tail.read, events.MaxValueBuffered)
	}
}

func TestPublishRefusesEmptyInput(t *testing.T) {
	t.Parallel()
	empty := filepath.Join(t.TempDir(), "empty.json")
	blank := filepath.Join(t.TempDir(), "blank.json")
	os.WriteFile(empty, nil, 0o600)
	os.WriteFile(blank, []byte("\n  \n\t\n"), 0o600)
	// No server: an empty input is refused before connecting.
	url := "--nats-url=nats://127.0.0.1:1"
	for _, c := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"empty standard input is refused", "", []string{url}, "no intents in standard input"},
		{"standard input of blank lines is refused", "\n\n  \n", []string{url, "--file", "-"}, "no intents in standard input"},
		{"an empty file is refused by name", "", []string{url, "--file", empty}, "no intents in " + empty},
		{"a file of blank lines is refused by name", "", []string{url, "--file", blank}, "no intents in " + blank},
		{"a blank argument is refused", "", []string{url, "  "}, "no intents in the argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runPublishTest(t, strings.NewReader(c.stdin), c.args...)
			if err == nil || err.Error() != c.want {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestPublishSaysWhenItReadsATerminal(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		terminal bool
		args     []string
		hint     bool
	}{
		{"a terminal on standard input gets the hint", true, nil, true},
		{"a terminal named with --file - gets the hint", true, []string{"--file", "-"}, true},
		{"a pipe gets no hint", false, nil, false},
		{"an argument gets no hint even from a terminal", true, []string{"{}"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"--nats-url", "nats://127.0.0.1:1"}, c.args...)
			_ = publish(context.Background(), args, strings.NewReader(""), c.terminal, &stdout, &stderr)
			if got := strings.Contains(stderr.String(), terminalHint); got != c.hint {
				t.Errorf("hint shown %v, want %v; stderr %q", got, c.hint, stderr.String())
			}
		})
	}
	t.Run("only a terminal counts as one", func(t *testing.T) {
		regular, err := os.CreateTemp(t.TempDir(), "f")
		if err != nil {
			t.Fatal(err)
		}
		defer regular.Close()
		null, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer null.Close()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		for name, f := range map[string]*os.File{"a regular file": regular, "/dev/null": null, "a pipe": r} {
			if isTerminal(f) {
				t.Errorf("%s taken for a terminal", name)
			}
		}
		if ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0); err == nil {
			defer ptmx.Close()
			if !isTerminal(ptmx) {
				t.Error("a pseudo-terminal not taken for a terminal")
			}
		}
	})
}

func TestPublishStopsReadingWhenInterrupted(t *testing.T) {
	t.Parallel()
	r, w := io.Pipe() // a terminal nobody types into
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- publish(ctx, []string{"--nats-url", "nats://127.0.0.1:1"}, r, true, io.Discard, io.Discard)
	}()
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "interrupted while reading standard input") {
			t.Errorf("error %v, want an interruption", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("publish still reading 10s after the interrupt")
	}
}

func TestPublishBuildsTheSubjectFromTheBody(t *testing.T) {
	t.Parallel()
	e := startPublishEnv(t)
	in := testIntent("room-9009", "mogs", 10)
	in.RoomID = "9009"
	body, _ := json.Marshal(in)
	if stdout, _, err := runPublishTest(t, strings.NewReader(""), "--nats-url", e.url, string(body)); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if m := e.stored(t)["room-9009"]; m == nil || m.Subject != "coinsaga.intents.1468180338417074177.9009" {
		t.Fatalf("stored %+v, want it on room 9009's subject", m)
	}
}
