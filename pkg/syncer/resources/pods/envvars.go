package pods

import (
	"cmp"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ServiceEnv returns the environment variables a kubelet gives a pod for the
// services it can see: KUBERNETES_SERVICE_HOST and friends for the tenant's
// own API server, and, where the tenant pod keeps service links on, those of
// every Service in its namespace. Host pods run with service links off (the
// host's would name host Services), so the syncer computes the tenant's.
// Services without a cluster IP (headless, ExternalName) give none; the
// result is ordered by service name, so it is stable.
func ServiceEnv(services []corev1.Service) []corev1.EnvVar {
	services = slices.Clone(services)
	slices.SortFunc(services, func(a, b corev1.Service) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Namespace, b.Namespace))
	})
	var out []corev1.EnvVar
	seen := map[string]bool{}
	for _, svc := range services {
		ip := svc.Spec.ClusterIP
		if ip == "" || ip == corev1.ClusterIPNone || len(svc.Spec.Ports) == 0 {
			continue
		}
		prefix := envName(svc.Name)
		if seen[prefix] {
			continue
		}
		seen[prefix] = true
		add := func(name, value string) { out = append(out, corev1.EnvVar{Name: name, Value: value}) }
		first := svc.Spec.Ports[0]
		add(prefix+"_SERVICE_HOST", ip)
		add(prefix+"_SERVICE_PORT", strconv.Itoa(int(first.Port)))
		for _, p := range svc.Spec.Ports {
			if p.Name != "" {
				add(prefix+"_SERVICE_PORT_"+envName(p.Name), strconv.Itoa(int(p.Port)))
			}
		}
		// The Docker-links style variables.
		add(prefix+"_PORT", linkURL(first, ip))
		for _, p := range svc.Spec.Ports {
			proto := string(p.Protocol)
			if proto == "" {
				proto = string(corev1.ProtocolTCP)
			}
			base := prefix + "_PORT_" + strconv.Itoa(int(p.Port)) + "_" + strings.ToUpper(proto)
			add(base, linkURL(p, ip))
			add(base+"_PROTO", strings.ToLower(proto))
			add(base+"_PORT", strconv.Itoa(int(p.Port)))
			add(base+"_ADDR", ip)
		}
	}
	return out
}

func envName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

func linkURL(p corev1.ServicePort, ip string) string {
	proto := string(p.Protocol)
	if proto == "" {
		proto = string(corev1.ProtocolTCP)
	}
	return strings.ToLower(proto) + "://" + net.JoinHostPort(ip, strconv.Itoa(int(p.Port)))
}
