package sandbox

import (
	"runtime"
	"strconv"
	"testing"
	"time"
)

// billMemory fills a ledger of 100k accounts with n bills and returns the
// heap cost of one bill, its bill number included.
func billMemory(tb testing.TB, n int) float64 {
	const accounts = 100000
	l := newLedger(1 << 60)
	now := time.Now()
	openids := make([]string, accounts)
	for i := range openids {
		openids[i] = "opvxI4y_cVJx2pxsFCQrJ4" + strconv.Itoa(1000000+i)
		l.read(provMOGS, "10000", openids[i], now)
	}
	billNos := make([]string, n)
	for i := range billNos {
		billNos[i] = "cs-1659497694000-" + strconv.Itoa(i) // shaped like an order-derived key
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		if st, _, _ := l.pay(provMOGS, "10000", openids[i%accounts], billNos[i], 1, now, 0); st != opOK {
			tb.Fatalf("pay status %d", st)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(billNos)
	runtime.KeepAlive(l)
	// The bill numbers were allocated before the first reading: add them.
	return float64(after.HeapAlloc-before.HeapAlloc)/float64(n) + float64(len(billNos[n-1])+16)
}

// BenchmarkLedgerMemory reports the heap cost of a bill at the sandbox's
// design size (100k accounts, 1M bills):
//
//	go test -run '^$' -bench LedgerMemory -benchtime 1x ./providers/sandbox/
func BenchmarkLedgerMemory(b *testing.B) {
	for b.Loop() {
		b.ReportMetric(billMemory(b, 1000000), "B/bill")
	}
}

func TestLedgerMemoryPerBillIsModest(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 200k bills")
	}
	perBill := billMemory(t, 200000)
	t.Logf("%.0f bytes per bill (200k bills over 100k accounts)", perBill)
	// 1M bills must fit comfortably in a test machine's memory.
	if perBill > 512 {
		t.Fatalf("%.0f bytes per bill, want at most 512", perBill)
	}
}
