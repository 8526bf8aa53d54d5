package midas_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/midas"
	"github.com/coinsaga/coinsaga/providers/sandbox"
)

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
			if got := cp.Request().Header.Get("Cookie"); got != want {
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
