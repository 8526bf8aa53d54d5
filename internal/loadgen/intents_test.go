package loadgen

import (
	"testing"

	"github.com/coinsaga/coinsaga/events"
)

func TestIntentGenSpreadsTheMidasShareOverEveryPrefix(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		share float64
		n     int
		want  int // Midas orders among the first n
	}{
		{"no share pays everything through MOGS", 0, 100, 0},
		{"a whole share pays everything through Midas", 1, 100, 100},
		{"half of ten is five", 0.5, 10, 5},
		{"half of an odd count rounds down", 0.5, 7, 3},
		{"three tenths of ten is three", 0.3, 10, 3},
		{"three tenths of a thousand is three hundred", 0.3, 1000, 300},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newIntentGen(events.Subjects{}, "m1", tc.share, 10)
			got := 0
			for i := range tc.n {
				in, err := events.DecodeIntent(g.msg(i).Data)
				if err != nil {
					t.Fatalf("intent %d: %v", i, err)
				}
				if in.Payment.Provider == events.ProviderMidas {
					got++
				}
			}
			if got != tc.want {
				t.Errorf("%d Midas orders among the first %d at share %v, want %d", got, tc.n, tc.share, tc.want)
			}
		})
	}
}

func TestIntentGenNamesEachOrderForItsTracker(t *testing.T) {
	t.Parallel()
	s := events.Subjects{Prefix: "lg"}
	g := newIntentGen(s, "m1", 0.5, 3)
	for i := range 12 {
		m := g.msg(i)
		in, err := events.DecodeIntent(m.Data)
		if err != nil {
			t.Fatalf("intent %d does not decode as the worker decodes it: %v", i, err)
		}
		tr := newTracker("m1", 12, events.State.Terminal)
		if got, ok := tr.index(in.OutOrderID); !ok || got != i {
			t.Errorf("intent %d is named %q, which its tracker reads as %d, %v", i, in.OutOrderID, got, ok)
		}
		if id := m.Header.Get(events.HeaderMsgID); id != in.OutOrderID {
			t.Errorf("intent %d: Nats-Msg-Id %q, want the out_order_id %q (JetStream dedupes a retried publish by it)", i, id, in.OutOrderID)
		}
		if want := s.Intent(in.MgID, in.RoomID); m.Subject != want {
			t.Errorf("intent %d published to %q, want %q", i, m.Subject, want)
		}
		if want := "pm1-" + string(rune('0'+i%3)); in.FromUID != want {
			t.Errorf("intent %d from %q, want %q: the players repeat every 3 orders", i, in.FromUID, want)
		}
	}
}
