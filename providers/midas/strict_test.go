package midas_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/midas"
	"github.com/coinsaga/coinsaga/providers/providertest"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

func TestBillNumbersTheProviderWouldRefuseNeverLeave(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	providertest.BadBillNosNeverLeave(t, account("k"), providertest.Endpoints{Pay: "pay_m", Cancel: "cancel_pay_m", Present: "present_m"},
		func(t *testing.T) (providers.Wallet, func() int32) {
			cp, c := newCapture(t, `{"ret":0,"balance":1}`)
			return c, cp.hits.Load
		})

	t.Run("a bill number of 63 characters is paid", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		bill := strings.Repeat("b", 62) + "1"
		if _, err := e.client.Debit(ctx, account("long"), providers.Debit{BillNo: bill, Amount: 1}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTimestampAgainstTheSandbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	start := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	newSandbox := func(t *testing.T) (*sandbox.Sandbox, string) {
		sb := sandbox.New(sandbox.Config{Seed: 1, Now: func() time.Time { return start }})
		srv := httptest.NewServer(sb)
		t.Cleanup(srv.Close)
		return sb, srv.URL
	}
	client := func(base string, now func() time.Time) *midas.Client {
		return midas.New(midas.Config{BaseURL: base, AppID: appID, AppKey: appKey, Timeout: 2 * time.Second, Now: now})
	}
	cases := []struct {
		name string
		skew time.Duration
		ok   bool
	}{
		{"a client whose clock agrees with the provider's is served", 0, true},
		{"a client 4 minutes behind is served", -4 * time.Minute, true},
		{"a client 6 minutes behind is refused as a final param error", -6 * time.Minute, false},
		{"a client 6 minutes ahead is refused as a final param error", 6 * time.Minute, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb, base := newSandbox(t)
			c := client(base, func() time.Time { return sb.Now().Add(tc.skew) })
			_, err := c.Debit(ctx, account("clock"), providers.Debit{BillNo: "ts-1", Amount: 1})
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if pe := wantErr(t, err, providers.Final, providers.CodeParamError); pe.Ret != 1001 {
				t.Errorf("Ret = %d, want 1001", pe.Ret)
			}
			if len(sb.Bills()) != 0 {
				t.Error("a refused pay recorded a bill")
			}
		})
	}

	t.Run("after the sandbox clock moves 49 hours only a client on that clock is served", func(t *testing.T) {
		t.Parallel()
		sb, base := newSandbox(t)
		sb.AdvanceClock(49 * time.Hour)
		if _, err := client(base, func() time.Time { return start }).Balance(ctx, account("clock")); providers.CodeOf(err) != providers.CodeParamError {
			t.Errorf("client on the old time: err = %v, want a param error", err)
		}
		if _, err := client(base, sb.Now).Balance(ctx, account("clock")); err != nil {
			t.Errorf("client on the sandbox clock: %v", err)
		}
	})
}

func TestSessionCookie(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pairs := []struct{ sessionType, sessionID string }{
		{"kp_actoken", "openid"},
		{"openkey", "openid"},
		{"wc_actoken", "hy_gameid"},
		{"st_dummy", "hy_gameid"},
	}
	for _, p := range pairs {
		t.Run("session_type "+p.sessionType+" sends session_id "+p.sessionID+" and url-encoded values", func(t *testing.T) {
			t.Parallel()
			cp, c := newCapture(t, `{"ret":0,"balance":1}`)
			a := account("cookie")
			a.Midas.SessionType = p.sessionType
			if _, err := c.Debit(ctx, a, providers.Debit{BillNo: "ck-1", Amount: 1}); err != nil {
				t.Fatal(err)
			}
			want := "session_id=" + p.sessionID + "; session_type=" + p.sessionType + "; org_loc=%2Fmpay%2Fpay_m"
			if got := cp.req.Header.Get("Cookie"); got != want {
				t.Errorf("Cookie = %q, want %q", got, want)
			}
		})
		t.Run("session_type "+p.sessionType+" is served by the sandbox, which checks the pairing", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			a := account("cookie-" + p.sessionType)
			a.Midas.SessionType = p.sessionType
			if _, err := e.client.Debit(ctx, a, providers.Debit{BillNo: "ck-1", Amount: 1}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBillsExpireAfter48Hours is the hazard the saga must guard against:
// 48 hours after the first pay Midas (assumed like MOGS, providers.md)
// forgets the billno, so a cancel finds nothing and a pay with the same
// billno charges again. The client follows the moved clock for its ts.
func TestBillsExpireAfter48Hours(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := providers.Debit{BillNo: "order-48h", Amount: 100}
	newClockedEnv := func(t *testing.T) (*sandbox.Sandbox, *midas.Client) {
		sb := sandbox.New(sandbox.Config{Seed: 1})
		srv := httptest.NewServer(sb)
		t.Cleanup(srv.Close)
		sb.SetAccount("midas", appID, "p", 1000, 0)
		return sb, midas.New(midas.Config{BaseURL: srv.URL, AppID: appID, AppKey: appKey, Timeout: 2 * time.Second, Now: sb.Now})
	}

	t.Run("a cancel 47 hours after the pay restores the coins", func(t *testing.T) {
		t.Parallel()
		sb, c := newClockedEnv(t)
		if _, err := c.Debit(ctx, account("p"), d); err != nil {
			t.Fatal(err)
		}
		sb.AdvanceClock(47 * time.Hour)
		if r, err := c.Cancel(ctx, account("p"), providers.Cancel{BillNo: d.BillNo, Amount: d.Amount}); err != nil || r.Class != providers.OK {
			t.Fatalf("cancel = %+v, %v", r, err)
		}
	})

	t.Run("a cancel 49 hours after the pay is final not found and the coins stay charged", func(t *testing.T) {
		t.Parallel()
		sb, c := newClockedEnv(t)
		if _, err := c.Debit(ctx, account("p"), d); err != nil {
			t.Fatal(err)
		}
		sb.AdvanceClock(49 * time.Hour)
		_, err := c.Cancel(ctx, account("p"), providers.Cancel{BillNo: d.BillNo, Amount: d.Amount})
		if pe := wantErr(t, err, providers.Final, providers.CodeNotFound); pe.Ret != 1003 {
			t.Errorf("Ret = %d, want 1003", pe.Ret)
		}
		if v, _ := sb.Account("midas", appID, "p"); v.Balance != 900 {
			t.Errorf("balance = %d, want 900: not found does not mean not charged", v.Balance)
		}
	})

	t.Run("a pay 49 hours later with the same billno charges a second time", func(t *testing.T) {
		t.Parallel()
		sb, c := newClockedEnv(t)
		if _, err := c.Debit(ctx, account("p"), d); err != nil {
			t.Fatal(err)
		}
		sb.AdvanceClock(49 * time.Hour)
		r, err := c.Debit(ctx, account("p"), d)
		if err != nil || r.Class != providers.OK || r.Balance != 800 {
			t.Fatalf("second pay = %+v, %v; want OK with a second debit", r, err)
		}
	})

	t.Run("a repeated pay within 48 hours is already done and may carry no balance", func(t *testing.T) {
		t.Parallel()
		sb, c := newClockedEnv(t)
		if _, err := c.Debit(ctx, account("p"), d); err != nil {
			t.Fatal(err)
		}
		sb.AdvanceClock(47 * time.Hour)
		r, err := c.Debit(ctx, account("p"), d)
		if err != nil || r.Class != providers.AlreadyDone || r.BalanceKnown {
			t.Fatalf("repeat = %+v, %v; want already done without a balance", r, err)
		}
		if v, _ := sb.Account("midas", appID, "p"); v.Balance != 900 {
			t.Errorf("balance = %d, want one debit", v.Balance)
		}
	})
}
