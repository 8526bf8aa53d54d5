package kit_test

import (
	"net"
	"testing"

	"github.com/coinsaga/coinsaga/internal/kit"
)

func TestReserveAddr(t *testing.T) {
	t.Parallel()
	addr := kit.ReserveAddr(t)
	t.Run("nobody answers at a reserved address", func(t *testing.T) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Fatal("a reserved address answered")
		}
	})
	t.Run("the kernel hands the reserved port to no one asking for any port", func(t *testing.T) {
		for range 200 {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			got := ln.Addr().String()
			ln.Close()
			if got == addr {
				t.Fatal("the kernel handed out the reserved port")
			}
		}
	})
	t.Run("a listener, as a child process's, can take the reserved address", func(t *testing.T) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("cannot listen on the reserved address: %v", err)
		}
		defer ln.Close()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
}
