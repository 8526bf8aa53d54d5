package worker

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/coinsaga/coinsaga/store"
)

// billLife is how long a bill_no may be trusted after its first use. The
// MOGS seed gives bills 48 hours (有效期是 48 小时), and providers.md assumes
// the same for Midas: after that a cancel answers "not found" whether or not
// the bill charged, and the same number may be taken as a new bill. One
// hour of margin covers clocks and the time between our record of the first
// use and the provider's.
const billLife = 47 * time.Hour

// billNoMax is the longest bill_no the wallets take (WeChat midas, whose
// field names MOGS shares: at most 63 of [0-9A-Za-z_-], no leading '_').
const billNoMax = 63

// billNo derives the wallet idempotency key from the order alone: at most
// 63 characters of [0-9A-Za-z_-], never starting with '_', and never the
// same for two orders or two generations of one order. A new generation
// starts only after a cancel confirmed the previous bill is void, so two
// bills of one order can never both be charged.
//
// The first bill of an order whose out_order_id has at most 62 characters
// and does not start with '_' is the out_order_id itself, which operators
// find in the providers' records at a glance. Every other bill is exactly
// 63 characters, so it can never equal one of those: 'b', the first 18
// characters of the out_order_id padded with '_', '-', and the 43
// characters of base64url(SHA-256(out_order_id, generation)). Two of those
// are equal only if SHA-256 collides.
func billNo(outOrderID string, generation int) string {
	if generation == 0 && len(outOrderID) < billNoMax && !strings.HasPrefix(outOrderID, "_") {
		return outOrderID
	}
	sum := sha256.Sum256([]byte("coinsaga bill\x00" + outOrderID + "\x00" + strconv.Itoa(generation)))
	head := outOrderID[:min(len(outOrderID), 18)]
	return "b" + head + strings.Repeat("_", 18-len(head)) + "-" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// billFirstUse is when o's current bill was first sent, or as early as it
// can have been: orders stored before FirstPayAt existed count from their
// creation.
func billFirstUse(o store.Order) time.Time {
	if !o.FirstPayAt.IsZero() {
		return o.FirstPayAt
	}
	return o.CreatedAt
}

// billYoung reports whether o's bill is surely still alive at now.
func billYoung(o store.Order, now time.Time) bool {
	return now.Sub(billFirstUse(o)) < billLife
}
