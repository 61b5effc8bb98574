// Package servicecidr checks a service CIDR and derives the address of the
// "kubernetes" Service from it, the same way for tenants and for the
// devcluster host.
package servicecidr

import (
	"fmt"
	"net"
)

// FirstIP returns the first usable address of a service CIDR, the
// kube-apiserver's default for the "kubernetes" Service, after checking the
// CIDR the way the API server's allocator would accept it. Errors begin with
// the quoted CIDR, so callers can prefix the flag that holds it.
func FirstIP(cidr string) (net.IP, error) {
	ip, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("%q is not a CIDR", cidr)
	}
	if !ip.Equal(ipnet.IP) {
		return nil, fmt.Errorf("%q has host bits set; did you mean %s?", cidr, ipnet.String())
	}
	ones, bits := ipnet.Mask.Size()
	if bits-ones < 2 {
		return nil, fmt.Errorf("%q is too small", cidr)
	}
	if bits == 128 && bits-ones > 20 {
		// The API server's allocator refuses IPv6 ranges larger than /108.
		return nil, fmt.Errorf("%q is larger than /108", cidr)
	}
	first := make(net.IP, len(ipnet.IP))
	copy(first, ipnet.IP)
	first[len(first)-1]++
	return first, nil
}
