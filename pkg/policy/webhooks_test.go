package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func TestCheckWebhookURL(t *testing.T) {
	t.Parallel()
	p := Default(ProfileHard)
	p.WebhookURLHosts = []string{"webhooks.example.com", "203.0.113.7", "2001:db8::7"}
	path := field.NewPath("webhooks").Index(0).Child("clientConfig", "url")
	tests := []struct {
		name string
		url  *string
		// want is in the one error's text; "" means allowed.
		want string
	}{
		{name: "a webhook calling a service has no url to check", url: nil},
		{name: "a listed host is allowed", url: ptr.To("https://webhooks.example.com/validate")},
		{name: "a listed host in other case, with a port and a trailing dot, is allowed", url: ptr.To("https://WebHooks.Example.com.:8443/validate")},
		{name: "a listed IPv4 address is allowed", url: ptr.To("https://203.0.113.7/validate")},
		{name: "a listed IPv6 address written differently is allowed", url: ptr.To("https://[2001:db8:0::7]:443/validate")},
		{name: "the host API server's Service address is refused, naming the host and the way out",
			url: ptr.To("https://10.96.0.1/validate"), want: `webhooks[0].clientConfig.url: Forbidden: host 10.96.0.1 is not in the operator's webhookURLHosts`},
		{name: "a cloud metadata address is refused", url: ptr.To("https://169.254.169.254/latest"), want: "host 169.254.169.254 is not in"},
		{name: "loopback, where the tenant API server's own ports are, is refused", url: ptr.To("https://127.0.0.1:2379/"), want: "host 127.0.0.1 is not in"},
		{name: "a host name inside the host cluster is refused", url: ptr.To("https://kubernetes.default.svc/"), want: "host kubernetes.default.svc is not in"},
		{name: "a subdomain of a listed host is refused", url: ptr.To("https://evil.webhooks.example.com/"), want: "clientConfig.service"},
		{name: "a listed host as a user name does not pass for the host", url: ptr.To("https://webhooks.example.com@10.0.0.1/"), want: "host 10.0.0.1 is not in"},
		{name: "a url without a host is refused", url: ptr.To("https:///validate"), want: "must be a URL with a host"},
		{name: "a url that does not parse is refused", url: ptr.To("https://%zz/"), want: "must be a URL with a host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := CheckWebhookURL(tt.url, path, p)
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Errorf("refused: %v", errs)
			case tt.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want)):
				t.Errorf("got %v, want one error saying %q", errs, tt.want)
			}
		})
	}
}

func TestCheckWebhookURLWithTheDefaultPolicyRefusesEveryURL(t *testing.T) {
	t.Parallel()
	for _, profile := range []Profile{ProfileHard, ProfileSoft} {
		if errs := CheckWebhookURL(ptr.To("https://webhooks.example.com/"), field.NewPath("url"), Default(profile)); len(errs) == 0 {
			t.Errorf("the default %s policy allows a webhook url", profile)
		}
	}
}

func TestLoadChecksAPIServerEgress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		want []string // each must appear in the error; none means valid
	}{
		{name: "networks and hosts as the operator writes them", file: "apiServerEgressCIDRs: [203.0.113.0/24, 2001:db8::/32]\nwebhookURLHosts: [webhooks.example.com, 203.0.113.7, 2001:db8::7]\n"},
		{name: "an invalid network", file: "apiServerEgressCIDRs: [10.0.0.0/33]\n",
			want: []string{`apiServerEgressCIDRs[0]: Invalid value: "10.0.0.0/33": must be a network in CIDR notation`}},
		{name: "a network with host bits", file: "apiServerEgressCIDRs: [10.1.2.3/16]\n",
			want: []string{`apiServerEgressCIDRs[0]: Invalid value: "10.1.2.3/16": has host bits set; did you mean 10.1.0.0/16?`}},
		{name: "a URL where a host belongs", file: "webhookURLHosts: [\"https://webhooks.example.com\"]\n",
			want: []string{`webhookURLHosts[0]: Invalid value: "https://webhooks.example.com": must be a DNS name or an IP address`}},
		{name: "a wildcard host", file: "webhookURLHosts: [\"*.example.com\"]\n",
			want: []string{`webhookURLHosts[0]: Invalid value: "*.example.com"`}},
		{name: "an IPv6 address with a zone", file: "webhookURLHosts: [\"fe80::1%eth0\"]\n",
			want: []string{`webhookURLHosts[0]: Invalid value: "fe80::1%eth0": must be a DNS name or an IP address without a zone`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "policy.yaml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load accepted %q", tt.file)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error %q does not say %q", err, w)
				}
			}
		})
	}
}
