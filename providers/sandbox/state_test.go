package sandbox_test

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers/sandbox"
)

// openEnv is newEnv for a sandbox that keeps its state in path, on clk.
func openEnv(t *testing.T, path string, clk *clock) *env {
	t.Helper()
	cfg := sandbox.DefaultConfig()
	cfg.Seed = 42
	cfg.Now = clk.Now
	cfg.StateFile = path
	sb, err := sandbox.Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(func() {
		srv.Close()
		_ = sb.Close()
	})
	return &env{t: t, sb: sb, srv: srv, clock: clk, cfg: cfg}
}

// restart stops e's sandbox the way serve does (no more requests, then
// Close) and opens a new one on the same state file and clock.
func (e *env) restart() *env {
	e.t.Helper()
	e.srv.Close()
	if err := e.sb.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	return openEnv(e.t, e.cfg.StateFile, e.clock)
}

func TestStateFile(t *testing.T) {
	t.Parallel()

	t.Run("a sandbox opened on the file has the accounts, bills, SUD orders and clock of the one that wrote it", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "sandbox.json")
		e := openEnv(t, path, newClock())
		midasOf := func(e *env) string { return e.cfg.MidasAppID }

		// Bills of every kind: a pay whose debit is still hidden, a
		// cancelled pay, a present, a MOGS-numbered pay, a Midas pay, and
		// one that expires; an account set by an operator; SUD orders
		// done, executing and failing; a moved clock.
		e.mogs("pay", "old", map[string]any{"os_plat_id": 1, "bill_no": "b-old", "amt": 1})
		e.clock.Advance(49 * time.Hour)
		e.mogs("pay", "old", map[string]any{"os_plat_id": 1, "bill_no": "b-old", "amt": 1}) // expires the first, charges again
		e.sb.SetFault(sandbox.Fault{Endpoint: "mogs.pay", VisibilityDelayMS: 3000})
		if r := e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "bill_no": "b-hidden", "amt": 100}); r.Ret != 0 {
			t.Fatalf("pay: %+v", r)
		}
		e.sb.ClearFaults()
		e.mogs("present", "p1", map[string]any{"os_plat_id": 1, "bill_no": "b-gift", "amt": 7})
		e.mogs("pay", "p2", map[string]any{"os_plat_id": 1, "bill_no": "b-void", "amt": 30})
		if r := e.mogs("cancelpay", "p2", map[string]any{"os_plat_id": 1, "bill_no": "b-void"}); r.Ret != 0 {
			t.Fatalf("cancelpay: %+v", r)
		}
		generated := e.mogs("pay", "p2", map[string]any{"os_plat_id": 1, "amt": 5}).BillNo
		if r := e.midas("/mpay/pay_m", "m1", map[string]string{"amt": "40", "billno": "b-midas"}); r.Ret != 0 {
			t.Fatalf("pay_m: %+v", r)
		}
		e.sb.SetAccount("midas", midasOf(e), "m2", 500, 50)
		done := dataOf(t, e.sud("/sud/create_order", validOrder("o-done")))
		e.sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteDelayMS: 600000, ExecuteFailRate: 1})
		slow := dataOf(t, e.sud("/sud/create_order", validOrder("o-slow")))
		e.sb.ClearFaults()
		// Less than the 5 minutes SUD allows a signature, which the
		// test signs with its own clock.
		moved := e.sb.AdvanceClock(2 * time.Minute)

		accounts := []struct{ provider, appid, openid string }{
			{"mogs", e.cfg.MOGSAppID, "old"}, {"mogs", e.cfg.MOGSAppID, "p1"}, {"mogs", e.cfg.MOGSAppID, "p2"},
			{"midas", e.cfg.MidasAppID, "m1"}, {"midas", e.cfg.MidasAppID, "m2"},
		}
		views := map[string]sandbox.AccountView{}
		for _, a := range accounts {
			views[a.openid] = e.account(a.provider, a.appid, a.openid)
		}
		bills, orders := e.sb.Bills(), e.sb.SUDOrders()
		if len(bills) != 7 || len(orders) != 2 {
			t.Fatalf("before the restart: %d bills, %d orders", len(bills), len(orders))
		}

		e = e.restart()
		for _, a := range accounts {
			if got := e.account(a.provider, a.appid, a.openid); got != views[a.openid] {
				t.Errorf("account %s = %+v, was %+v", a.openid, got, views[a.openid])
			}
		}
		if got := e.sb.Bills(); !reflect.DeepEqual(got, bills) {
			t.Errorf("bills after the restart:\n%+v\nwere:\n%+v", got, bills)
		}
		if got := e.sb.SUDOrders(); !reflect.DeepEqual(got, orders) {
			t.Errorf("SUD orders after the restart %+v, were %+v", got, orders)
		}
		if got := e.sb.Now(); !got.Equal(moved) {
			t.Errorf("clock after the restart %v, was %v: the offset is lost", got, moved)
		}

		// And they behave as they did: bill numbers are still taken, a
		// kept bill can be cancelled, a hidden debit shows when its time
		// comes, an executing order ends as it was going to.
		if r := e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "bill_no": "b-hidden", "amt": 100}); r.Ret != 90012 {
			t.Errorf("repeated pay after the restart: %+v, want 90012 (the bill is kept)", r)
		}
		if r := e.midas("/mpay/pay_m", "m1", map[string]string{"amt": "40", "billno": "b-midas"}); r.Ret != 1002215 {
			t.Errorf("repeated pay_m after the restart: %+v, want 1002215", r)
		}
		if r := e.mogs("cancelpay", "p2", map[string]any{"os_plat_id": 1, "bill_no": "b-void"}); r.Ret != 90015 {
			t.Errorf("cancelpay of the cancelled bill: %+v, want 90015", r)
		}
		if r := e.mogs("pay", "p2", map[string]any{"os_plat_id": 1, "amt": 5}); r.BillNo == generated || r.Ret != 0 {
			t.Errorf("a new generated bill number %+v repeats %s", r, generated)
		}
		// The hidden debit was made 2 min of sandbox time ago: the clock
		// offset kept, it is visible now.
		if r := e.mogs("getbalance", "p1", map[string]any{"os_plat_id": 1}); r.Balance != views["p1"].Balance {
			t.Errorf("getbalance p1 = %d, want %d", r.Balance, views["p1"].Balance)
		}
		if got := e.statusOf("o-slow"); got != "EXECUTING" {
			t.Errorf("o-slow after the restart: %s, want EXECUTING", got)
		}
		e.clock.Advance(10 * time.Minute)
		if got := e.statusOf("o-slow"); got != "EXECUTE_FAIL" {
			t.Errorf("o-slow once its delay passed: %s, want EXECUTE_FAIL", got)
		}
		if r := e.sud("/sud/query_order", map[string]string{"order_id": slow.OrderID}); r.RetCode != 0 {
			t.Errorf("query_order by order_id %s after the restart: %+v", slow.OrderID, r)
		}
		if r := e.sud("/sud/create_order", validOrder("o-done")); r.RetCode != 70501 {
			t.Errorf("create_order of a kept out_order_id: %+v, want 70501", r)
		}
		next := dataOf(t, e.sud("/sud/create_order", validOrder("o-next")))
		if next.OrderID == done.OrderID || next.OrderID == slow.OrderID {
			t.Errorf("a new order id %s repeats an old one", next.OrderID)
		}
	})

	t.Run("a hidden debit stays hidden across a restart until its time", func(t *testing.T) {
		t.Parallel()
		e := openEnv(t, filepath.Join(t.TempDir(), "sandbox.json"), newClock())
		e.sb.SetFault(sandbox.Fault{Endpoint: "mogs.pay", VisibilityDelayMS: 3000})
		e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "bill_no": "b-1", "amt": 100})
		e = e.restart()
		if r := e.mogs("getbalance", "p1", map[string]any{"os_plat_id": 1}); r.Balance != 1000000 {
			t.Errorf("balance read right after the restart = %d, want the debit still hidden", r.Balance)
		}
		e.clock.Advance(3 * time.Second)
		if r := e.mogs("getbalance", "p1", map[string]any{"os_plat_id": 1}); r.Balance != 999900 {
			t.Errorf("balance read after the delay = %d, want 999900", r.Balance)
		}
	})

	t.Run("every change reaches the file within the save interval, without Close", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "sandbox.json")
		e := openEnv(t, path, newClock())
		e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "bill_no": "b-unclosed", "amt": 100})
		waitFor(t, "the bill in the state file", func() bool {
			data, err := os.ReadFile(path)
			return err == nil && strings.Contains(string(data), "b-unclosed")
		})
		// A second sandbox reads what the first (still open, as after a
		// SIGKILL) wrote.
		data, _ := os.ReadFile(path)
		copyPath := filepath.Join(t.TempDir(), "crashed.json")
		if err := os.WriteFile(copyPath, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c := openEnv(t, copyPath, e.clock)
		if v := c.account("mogs", c.cfg.MOGSAppID, "p1"); v.Balance != 999900 {
			t.Errorf("account from the unclosed sandbox's file: %+v", v)
		}
	})

	t.Run("Open writes the file at once and leaves no temporary file behind", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		e := openEnv(t, filepath.Join(dir, "sandbox.json"), newClock())
		if _, err := os.Stat(e.cfg.StateFile); err != nil {
			t.Fatalf("no state file after Open: %v", err)
		}
		e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "bill_no": "b-1", "amt": 1})
		if err := e.sb.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := e.sb.Close(); err != nil {
			t.Fatal(err)
		}
		if err := e.sb.Close(); err != nil {
			t.Errorf("a second Close: %v", err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			var names []string
			for _, en := range entries {
				names = append(names, en.Name())
			}
			t.Errorf("files in the data dir: %v, want only sandbox.json", names)
		}
	})

	t.Run("a state file that cannot be written is an error of Open", func(t *testing.T) {
		t.Parallel()
		cfg := sandbox.DefaultConfig()
		cfg.StateFile = filepath.Join(t.TempDir(), "no-such-dir", "sandbox.json")
		if _, err := sandbox.Open(cfg); err == nil || !strings.Contains(err.Error(), cfg.StateFile) {
			t.Errorf("Open = %v, want an error naming %s", err, cfg.StateFile)
		}
	})

	t.Run("without a state file Flush and Close do nothing", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		if err := e.sb.Flush(); err != nil {
			t.Error(err)
		}
		if err := e.sb.Close(); err != nil {
			t.Error(err)
		}
	})
}

func TestStateFileRestoresPendingNotifications(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sandbox.json")
	e := openEnv(t, path, newClock())
	rc := newSink(t, nil)
	e.sb.SetSUDNotifyURL(rc.srv.URL)
	e.sb.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteDelayMS: 5000})
	e.sud("/sud/create_order", validOrder("o-pending"))
	e = e.restart()
	if n := rc.count(); n != 0 {
		t.Fatalf("%d notifications before the order's execution ended", n)
	}
	// The restarted sandbox has no URL until its owner sets one (serve does
	// at every start); then the notification is sent when the order ends.
	e.sb.SetSUDNotifyURL(rc.srv.URL)
	e.clock.Advance(5 * time.Second)
	waitFor(t, "the restored notification", func() bool { return e.sb.SUDNotifyStats().Delivered == 1 })
	if got := rc.notices()[0].Data; got.OutOrderID != "o-pending" || got.Status != "EXECUTE_SUCCESS" {
		t.Errorf("notification %+v", got)
	}
	// Delivered, it is owed no more: a second restart does not send it again.
	e = e.restart()
	e.sb.SetSUDNotifyURL(rc.srv.URL)
	e.sud("/sud/create_order", validOrder("o-after"))
	waitFor(t, "the new order's notification", func() bool { return e.sb.SUDNotifyStats().Delivered == 1 })
	if st := e.sb.SUDNotifyStats(); st.Pending != 0 || rc.count() != 2 {
		t.Errorf("after the second restart: %+v, %d notifications in all, want 2", st, rc.count())
	}
}

func TestDamagedStateFileIsRefused(t *testing.T) {
	t.Parallel()
	// A real state file to damage.
	good := filepath.Join(t.TempDir(), "sandbox.json")
	e := openEnv(t, good, newClock())
	e.mogs("pay", "p1", map[string]any{"os_plat_id": 1, "bill_no": "b-1", "amt": 100})
	e.sud("/sud/create_order", validOrder("o-1"))
	if err := e.sb.Close(); err != nil {
		t.Fatal(err)
	}
	valid, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, data, want string
	}{
		{"garbage", "not json at all", "not JSON"},
		{"a file cut short", string(valid[:len(valid)/2]), "not JSON"},
		{"an empty file", "", "not JSON"},
		{"another program's JSON", `{"accounts":[]}`, "format"},
		{"a newer version", strings.Replace(string(valid), `"version": 1`, `"version": 99`, 1), "version 99"},
		{"a misspelt field", strings.Replace(string(valid), `"cost_sum"`, `"costsum"`, 1), "costsum"},
		{"a bill without its account", strings.Replace(string(valid), `"openid": "p1",`, `"openid": "p9",`, 1), "not in the file"},
		{"an unknown provider", strings.Replace(string(valid), `"provider": "mogs"`, `"provider": "paypal"`, 1), "paypal"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "sandbox.json")
			if err := os.WriteFile(path, []byte(c.data), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := sandbox.DefaultConfig()
			cfg.StateFile = path
			_, err := sandbox.Open(cfg)
			if !errors.Is(err, sandbox.ErrBadState) {
				t.Fatalf("Open = %v, want ErrBadState", err)
			}
			for _, want := range []string{path, c.want, "make clean"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q:\n%v", want, err)
				}
			}
			if after, _ := os.ReadFile(path); string(after) != c.data {
				t.Error("the damaged file was overwritten")
			}
		})
	}
	t.Run("New panics with the same error", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "sandbox.json")
		os.WriteFile(path, []byte("{"), 0o600)
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(error).Error(), path) {
				t.Errorf("recovered %v", r)
			}
		}()
		cfg := sandbox.DefaultConfig()
		cfg.StateFile = path
		sandbox.New(cfg)
	})
}
