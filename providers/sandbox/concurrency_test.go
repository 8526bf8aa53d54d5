package sandbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/providers/providertest"
)

// TestConcurrentPaysAndCancelsOnOneAccount hammers one account with pays
// that share bill numbers, cancels racing the pays, and balance reads, then
// checks the ledger adds up.
func TestConcurrentPaysAndCancelsOnOneAccount(t *testing.T) {
	const (
		workers  = 200
		billNos  = 50
		initial  = 100000
		initGen  = 700
		openid   = "hot-player"
		midasApp = "1450000000"
	)
	type provider struct {
		name, appid           string
		pay, cancel           func(e *env, c *http.Client, bill string, amt int) int
		read                  func(e *env, c *http.Client) (balance, gen int64)
		okPay, dupPay, cancOK int
		cancDone, notFound    int
	}
	mogsBody := func(v map[string]any) string { b, _ := json.Marshal(v); return string(b) }
	mogsDo := func(e *env, c *http.Client, endpoint, body string) mogsResp {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/mogs/"+endpoint+"?"+e.mogsQuery(openid, nil).Encode(), stringsReader(body))
		var r mogsResp
		if !sendFrom(t, c, req, "mogs "+endpoint, &r) {
			r.Ret = -999
		}
		return r
	}
	midasDo := func(e *env, c *http.Client, path string, extra map[string]string) midasResp {
		p := e.midasParams(openid, extra)
		p["sig"] = providertest.MidasSig(e.cfg.MidasAppKey, "/v3/r"+path, p)
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path+"?"+encodeParams(p), nil)
		req.Header.Set("Cookie", midasCookie(path))
		var r midasResp
		if !sendFrom(t, c, req, "midas "+path, &r) {
			r.Ret = -999
		}
		return r
	}
	providers := []provider{
		{
			name: "mogs", appid: "10000",
			pay: func(e *env, c *http.Client, bill string, amt int) int {
				return mogsDo(e, c, "pay", mogsBody(map[string]any{"os_plat_id": 1, "amt": amt, "bill_no": bill})).Ret
			},
			cancel: func(e *env, c *http.Client, bill string, amt int) int {
				return mogsDo(e, c, "cancelpay", mogsBody(map[string]any{"os_plat_id": 1, "bill_no": bill})).Ret
			},
			read: func(e *env, c *http.Client) (int64, int64) {
				r := mogsDo(e, c, "getbalance", `{"os_plat_id":1}`)
				return r.Balance, r.GenBalance
			},
			okPay: 0, dupPay: 90012, cancOK: 0, cancDone: 90015, notFound: 90000,
		},
		{
			name: "midas", appid: midasApp,
			pay: func(e *env, c *http.Client, bill string, amt int) int {
				return midasDo(e, c, "/mpay/pay_m", map[string]string{"amt": strconv.Itoa(amt), "billno": bill}).Ret
			},
			cancel: func(e *env, c *http.Client, bill string, amt int) int {
				return midasDo(e, c, "/mpay/cancel_pay_m", map[string]string{"amt": strconv.Itoa(amt), "billno": bill}).Ret
			},
			read: func(e *env, c *http.Client) (int64, int64) {
				r := midasDo(e, c, "/mpay/get_balance_m", nil)
				return r.Balance, r.GenBalance
			},
			okPay: 0, dupPay: 1002215, cancOK: 0, cancDone: 1002215, notFound: 1003,
		},
	}
	for _, p := range providers {
		t.Run(p.name+": the balance is the initial one minus every uncancelled bill, each debited once", func(t *testing.T) {
			e := newEnv(t)
			e.sb.SetAccount(p.name, p.appid, openid, initial, initGen)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
			defer client.CloseIdleConnections()

			var paid [billNos]atomic.Int32
			var cancelled [billNos]atomic.Int32
			stop := make(chan struct{})
			var readers sync.WaitGroup
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					bal, gen := p.read(e, client)
					if gen < 0 || gen > bal {
						t.Errorf("read balance %d gen %d", bal, gen)
					}
				}
			}()

			var wg sync.WaitGroup
			for i := range workers {
				wg.Go(func() {
					n := i % billNos
					bill, amt := fmt.Sprintf("bill-%02d", n), 10+n
					switch ret := p.pay(e, client, bill, amt); ret {
					case p.okPay:
						paid[n].Add(1)
					case p.dupPay:
					default:
						t.Errorf("pay %s ret %d", bill, ret)
					}
					if i%3 == 0 {
						switch ret := p.cancel(e, client, bill, amt); ret {
						case p.cancOK:
							cancelled[n].Add(1)
						case p.cancDone, p.notFound: // raced ahead of the pay, or lost to another cancel
						default:
							t.Errorf("cancel %s ret %d", bill, ret)
						}
					}
				})
			}
			wg.Wait()
			close(stop)
			readers.Wait()

			var wantBalance, wantGen, wantCost int64 = initial, initGen, 0
			seen := map[string]bool{}
			var cancelledBills, cancelOKs int32
			for _, b := range e.sb.Bills() {
				if b.Cancelled {
					cancelledBills++
				}
				if seen[b.BillNo] {
					t.Fatalf("bill %s recorded twice", b.BillNo)
				}
				seen[b.BillNo] = true
				if !b.Cancelled {
					wantBalance -= b.Amt
					wantGen -= b.UsedGenAmt
					wantCost += b.Amt
				}
			}
			for n := range billNos {
				if paid[n].Load() != 1 {
					t.Fatalf("bill-%02d succeeded %d times", n, paid[n].Load())
				}
				if cancelled[n].Load() > 1 {
					t.Fatalf("bill-%02d cancelled %d times", n, cancelled[n].Load())
				}
				cancelOKs += cancelled[n].Load()
			}
			if cancelOKs != cancelledBills {
				t.Fatalf("%d cancels succeeded but %d bills are cancelled", cancelOKs, cancelledBills)
			}
			v := e.account(p.name, p.appid, openid)
			if v.Balance != wantBalance || v.GenBalance != wantGen || v.GenBalance < 0 {
				t.Fatalf("account %+v, want balance %d gen %d", v, wantBalance, wantGen)
			}
			if p.name == "mogs" && v.CostSum != wantCost {
				t.Fatalf("cost_sum %d, want %d", v.CostSum, wantCost)
			}
		})
	}
}
