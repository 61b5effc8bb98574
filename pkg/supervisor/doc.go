// Package supervisor keeps a sleeping tenant's API address open.
//
// knestd runs one control plane per process (etcd, kube-apiserver and
// kube-controller-manager are process-global in places), and a sleeping
// tenant must cost little, so sleep is a process boundary: the supervisor
// is a small process that owns the tenant's public API address and runs
// knestd as its child, on a loopback port behind it. It proxies TCP
// connections without terminating TLS: knestd keeps its certificates and
// its client-certificate authentication, and the supervisor holds no key.
//
// knestd decides when to sleep (it sees who sends requests, which the
// supervisor cannot: pkg/idle), stops its host pods and exits with
// ExitAsleep. The supervisor then keeps listening; the next connection
// starts knestd again and is held, not refused, until knestd's /readyz
// answers ok (or the wake timeout ends, when the connection is closed),
// then proxied. Any other exit of knestd ends the supervisor with it, as
// knestd's exit would end its container without a supervisor. Signals go
// to knestd, and the supervisor waits for it to stop: a sleep or a stop is
// always knestd's own orderly shutdown, never a kill.
package supervisor
