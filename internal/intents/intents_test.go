package intents

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/kit"
)

func intentJSON(t *testing.T, id string) string {
	t.Helper()
	b, err := json.Marshal(events.Intent{
		OutOrderID: id, MgID: "1468180338417074177", RoomID: "9009", Cmd: "specify_dice_roll",
		FromUID: "001", ToUID: "002", Value: 100, Payload: json.RawMessage(`{"point":6,"seq":1}`),
		Payment: events.Payment{Provider: "mogs", Amount: 10, OpenID: "p-" + id,
			MOGS: &events.MOGSPayment{JSCode: "js-" + id, PayItem: "dice"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// noPayment is an intent of id without its payment block: valid JSON
// with an out_order_id, refused by validation.
func noPayment(t *testing.T, id string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(intentJSON(t, id)), &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "payment")
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOpenRefusesAnInputWithoutIntentsBeforeAnythingIsDialled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, input, want string
	}{
		{name: "an empty input holds no intents", input: "", want: "no intents in the file"},
		{name: "blank lines hold no intents", input: "\n \n\t\n", want: "no intents in the file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Open(context.Background(), Input{R: strings.NewReader(tc.input), Name: "the file"})
			if err == nil || err.Error() != tc.want {
				t.Errorf("Open = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPublishReportsALinePerIntentAndCountsTheRefused(t *testing.T) {
	t.Parallel()
	jet := kit.StartJetStream(t).EnsureStreams(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	publish := func(t *testing.T, in Input) (string, error) {
		t.Helper()
		b, err := Open(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err = b.Publish(ctx, jet.JS, jet.Subjects, events.DefaultCatalog(), &out)
		return out.String(), err
	}
	t.Run("a positioned input names a refused intent by its number and line", func(t *testing.T) {
		input := intentJSON(t, "intents-a") + "\n" + noPayment(t, "intents-b") + "\n" + intentJSON(t, "intents-c") + "\n"
		out, err := publish(t, Input{R: strings.NewReader(input), Name: "the file", Positioned: true})
		if err == nil || err.Error() != "1 of 3 intents refused" {
			t.Errorf("Publish = %v, want 1 of 3 intents refused", err)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "published intents-a stream ") ||
			!strings.HasPrefix(lines[1], "refused intents-b (intent 2, line 2): ") || !strings.HasPrefix(lines[2], "published intents-c stream ") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("an intent published again is told as a duplicate and is no refusal", func(t *testing.T) {
		out, err := publish(t, Input{R: strings.NewReader(intentJSON(t, "intents-a")), Name: "the argument"})
		if err != nil || !strings.HasSuffix(out, " (duplicate: already published, JetStream kept the first)\n") {
			t.Errorf("Publish = %v, output %q", err, out)
		}
	})
	t.Run("an input not positioned names a refused intent by its id alone", func(t *testing.T) {
		out, err := publish(t, Input{R: strings.NewReader(noPayment(t, "intents-d")), Name: "the argument"})
		if err == nil || !strings.HasPrefix(out, "refused intents-d: ") {
			t.Errorf("Publish = %v, output %q", err, out)
		}
	})
	t.Run("JSON that cannot be read on stops the input and says the rest was not read", func(t *testing.T) {
		out, err := publish(t, Input{R: strings.NewReader(intentJSON(t, "intents-e") + "\n{\"a\": }\n" + intentJSON(t, "intents-f")), Name: "the file", Positioned: true})
		if err == nil || err.Error() != "1 of 2 intents refused; the rest of the file was not read" {
			t.Errorf("Publish = %v", err)
		}
		if strings.Contains(out, "intents-f") || !strings.Contains(out, "refused intent 2: malformed JSON") {
			t.Errorf("output:\n%s", out)
		}
	})
}

func TestOrWhereNamesAnIntentByWhatIsKnown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ id, where, want string }{
		{"", "", "the intent"},
		{"", "intent 2, line 3", "intent 2, line 3"},
		{"o-1", "", "o-1"},
		{"o-1", "intent 2", "o-1 (intent 2)"},
	} {
		if got := orWhere(tc.id, tc.where); got != tc.want {
			t.Errorf("orWhere(%q, %q) = %q, want %q", tc.id, tc.where, got, tc.want)
		}
	}
}
