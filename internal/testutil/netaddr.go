package testutil

import (
	"net"
	"os"
	"testing"
)

// NonLoopbackIPv4 is an IPv4 address of this machine that is not loopback, for tests
// that prove a client refuses such an address although it is reachable. A machine
// without one skips the test, except under CI=true, where a skip would hide the
// refusal going untested: there it fails.
func NonLoopbackIPv4(t testing.TB) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatalf("list this machine's addresses: %v", err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP.String()
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this machine has no IPv4 address but loopback's to listen on")
	}
	t.Skip("this machine has no IPv4 address but loopback's to listen on")
	return ""
}
