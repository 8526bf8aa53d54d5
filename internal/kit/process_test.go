package kit_test

import (
	"net"
	"testing"

	"github.com/coinsaga/coinsaga/internal/kit"
)

func TestReserveAddr(t *testing.T) {
	addr := kit.ReserveAddr(t)
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("a reserved address answered")
	}
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
	for range 200 {
		l2, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if l2.Addr().String() == addr {
			t.Fatal("the kernel handed out the reserved port")
		}
		l2.Close()
	}
}
