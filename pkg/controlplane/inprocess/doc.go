// Package inprocess carries the requests of knestd's own clients to its own
// API server without a network hop.
//
// knestd's syncer, DNS server and kubelet call the tenant API server of
// their own process thousands of times a minute. Over the network each
// request is encoded into HTTP/2 frames, encrypted, written to a loopback
// socket, read, decrypted and decoded again, and its client certificate is
// verified (twice: by the x509 authenticator and by pkg/identity's guard);
// each of these steps wakes a goroutine. A Server is an http.RoundTripper
// that calls the API server's handler directly, the whole filter chain
// included (authorization, admission, audit, priority and fairness, the
// request timeout), in a goroutine of its own as the net/http server would,
// and streams the response back through a bounded buffer, so watches work
// and a slow reader holds its server back.
//
// Identity: Authenticator, in front of the API server's authenticators,
// authenticates exactly the requests a Server made, as the Server's user.
// It reads a context value whose key is unexported: a request from the
// network cannot carry it, whatever its headers say. Connection upgrades
// (exec, attach, port-forward) are refused; they need the network
// transport.
package inprocess
