package translate

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestHostName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 60)
	tests := []struct {
		name            string
		tenant, ns, obj string
		max             int
		want            string
		wantPrefix      string
	}{
		{name: "a plain name joins the parts", tenant: "acme", ns: "web", obj: "api", max: MaxLabelLength, want: "api-x-web-x-acme"},
		{name: "a cluster-scoped object uses 'cluster'", tenant: "acme", ns: "", obj: "admin", max: MaxSubdomainLength, want: "admin-x-cluster-x-acme"},
		{name: "dots are fine in subdomain kinds", tenant: "acme", ns: "web", obj: "tls.crt", max: MaxSubdomainLength, want: "tls.crt-x-web-x-acme"},
		{name: "a name containing the separator is hashed", tenant: "acme", ns: "c", obj: "a-x-b", max: MaxLabelLength, wantPrefix: "a-x-b-x-x-"},
		{name: "a namespace containing the separator is hashed", tenant: "acme", ns: "b-x-c", obj: "a", max: MaxLabelLength, wantPrefix: "a-x-x-"},
		{name: "a name ending in -x is hashed", tenant: "acme", ns: "b", obj: "a-x", max: MaxLabelLength, wantPrefix: "a-x-x-x-"},
		{name: "a namespace starting with x- is hashed", tenant: "acme", ns: "x-b", obj: "a", max: MaxLabelLength, wantPrefix: "a-x-x-"},
		{name: "a name too long for a Service is hashed to 63", tenant: "acme", ns: "web", obj: long, max: MaxLabelLength, wantPrefix: strings.Repeat("a", 63-len("-x-x-")-hashLength-len("-x-acme")) + "-x-x-"},
		{name: "the same long name fits a Secret", tenant: "acme", ns: "web", obj: long, max: MaxSubdomainLength, want: long + "-x-web-x-acme"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := HostName(tc.tenant, tc.ns, tc.obj, tc.max)
			if tc.want != "" && got != tc.want {
				t.Errorf("HostName = %q, want %q", got, tc.want)
			}
			if tc.wantPrefix != "" && !strings.HasPrefix(got, tc.wantPrefix) {
				t.Errorf("HostName = %q, want prefix %q", got, tc.wantPrefix)
			}
			if len(got) > tc.max {
				t.Errorf("HostName = %q is %d long, max %d", got, len(got), tc.max)
			}
			if HostName(tc.tenant, tc.ns, tc.obj, tc.max) != got {
				t.Errorf("HostName is not deterministic")
			}
		})
	}
}

func TestHostNameSeparatesTheDocumentedAmbiguities(t *testing.T) {
	t.Parallel()
	pairs := [][2][2]string{
		{{"c", "a-x-b"}, {"b-x-c", "a"}},
		{{"b", "a-x"}, {"x-b", "a"}},
		{{"x-x-b", "a"}, {"b", "a-x-x"}},
	}
	for _, p := range pairs {
		a := HostName("t", p[0][0], p[0][1], MaxLabelLength)
		b := HostName("t", p[1][0], p[1][1], MaxLabelLength)
		if a == b {
			t.Errorf("%v and %v both map to %q", p[0], p[1], a)
		}
	}
}

// FuzzHostName checks, for arbitrary valid tenant names and namespaces,
// that host names are valid names of the kind, within its length limit, and
// that two different tenant objects never get the same host name.
func FuzzHostName(f *testing.F) {
	seeds := [][4]string{
		{"c", "a-x-b", "b-x-c", "a"},
		{"b", "a-x", "x-b", "a"},
		{"web", "api", "web", "api2"},
		{"x", "x", "x-x", "x"},
		{strings.Repeat("n", 63), strings.Repeat("s", 63), strings.Repeat("n", 63), strings.Repeat("s", 62)},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, ns1, name1, ns2, name2 string) {
		const tenant = "acme"
		for _, v := range []string{ns1, ns2} {
			if len(validation.IsDNS1123Label(v)) > 0 {
				t.Skip()
			}
		}
		for _, max := range []int{MaxLabelLength, MaxSubdomainLength} {
			valid := validation.IsDNS1123Subdomain
			if max == MaxLabelLength {
				valid = validation.IsDNS1035Label
			}
			if len(valid(name1)) > 0 || len(valid(name2)) > 0 {
				continue
			}
			h1 := HostName(tenant, ns1, name1, max)
			h2 := HostName(tenant, ns2, name2, max)
			for _, h := range []string{h1, h2} {
				if msgs := valid(h); len(msgs) > 0 {
					t.Fatalf("host name %q (max %d) is invalid: %v", h, max, msgs)
				}
				if len(h) > max {
					t.Fatalf("host name %q is longer than %d", h, max)
				}
			}
			if (ns1 != ns2 || name1 != name2) && h1 == h2 {
				t.Fatalf("%s/%s and %s/%s collide on %q (max %d)", ns1, name1, ns2, name2, h1, max)
			}
		}
	})
}
