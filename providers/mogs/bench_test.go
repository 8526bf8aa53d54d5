package mogs_test

import (
	"testing"

	"github.com/coinsaga/coinsaga/providers/providertest"
)

// BenchmarkWallet runs the wallet benchmarks of providertest on this
// client against the sandbox over loopback HTTP.
func BenchmarkWallet(b *testing.B) {
	providertest.BenchWallet(b, func(t testing.TB) providertest.Wallet { return newEnv(t).Wallet }, appID, account("bench"))
}
