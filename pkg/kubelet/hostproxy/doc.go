// Package hostproxy is knestd's kubelet.Backend: the kubelet API of a
// tenant's virtual Nodes, which replays each call the tenant API server
// makes against the host API server's subresource of the tenant pod's host
// pod (pods/log, pods/exec, pods/attach, pods/portforward) with knestd's
// own host identity.
//
// # Which host pod
//
// The kubelet.Server has read the tenant pod from the tenant API server and
// checked the container. The host pod of its host name must then be this
// tenant's copy of this very pod: the tenant marker label and the kind,
// namespace, name and UID annotations must all match. Anything else is
// "not found", whatever the host holds under that name, so no request
// reaches a host pod that is not the tenant's, and errors never name host
// objects.
//
// # Why a reverse proxy
//
// Streams are forwarded as they are: the upgrade request is replayed, with
// only the protocol headers (Upgrade, Connection, X-Stream-Protocol-Version,
// Sec-WebSocket-*) and knestd's host credentials, to the host API server's
// subresource URL, and the upgraded connection is then copied both ways
// (k8s.io/apimachinery's UpgradeAwareHandler, the API server's own kubelet
// proxy). The client's protocol offer thus reaches the host kubelet
// unchanged, so SPDY and WebSocket, every stream protocol version, TTY
// resizing and exit codes work without knestd knowing them. Terminating the
// streams here (the kubelet's streaming server towards the tenant,
// client-go's remotecommand and portforward towards the host) would mean
// re-implementing each protocol version in both directions, and would
// report exit codes and stream errors through one more translation. Logs
// are a plain GET, read through client-go and copied out, so that host
// errors can be told to the tenant without the host's names.
//
// Requests are never sent to a host kubelet directly: the host API server
// authorises each one against knestd's namespaced Role (which needs get on
// pods/log, and create and get on pods/exec, pods/attach and
// pods/portforward) and reaches the kubelet itself.
package hostproxy
