package midas_test

import (
	"testing"

	"github.com/coinsaga/coinsaga/providers/providertest"
)

// The benchmarks are the wallet benchmarks of providertest, run on this
// client against the sandbox over loopback HTTP.

func benchWallet(b *testing.B) providertest.Wallet { return newEnv(b).Wallet }

func BenchmarkBalance(b *testing.B) { providertest.BenchBalance(b, benchWallet(b), account("bench")) }
func BenchmarkDebit(b *testing.B) {
	providertest.BenchDebit(b, benchWallet(b), appID, account("bench"))
}
func BenchmarkCancel(b *testing.B) {
	providertest.BenchCancel(b, benchWallet(b), appID, account("bench"))
}
func BenchmarkPresent(b *testing.B) { providertest.BenchPresent(b, benchWallet(b), account("bench")) }
