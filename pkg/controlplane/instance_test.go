package controlplane

import (
	"errors"
	"net"
	"testing"
	"time"
)

// The listen step closes the API server's listener only if the API server
// never took it over: closed under an API server that did not stop within
// its budget, upstream's RunServer panics.
func TestListenerClosedOnlyIfTheAPIServerNeverTookIt(t *testing.T) {
	for _, taken := range []bool{false, true} {
		st := &starter{s: Spec{BindAddress: "127.0.0.1"}, inst: &Instance{}}
		running, err := st.listen(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		st.listenerTaken.Store(taken)
		running.Stop()
		// Open: Accept waits until the deadline instead.
		_ = st.listener.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond))
		_, err = st.listener.Accept()
		closed := errors.Is(err, net.ErrClosed)
		if closed == taken {
			t.Errorf("API server took the listener: %v; closed by the listen step: %v", taken, closed)
		}
		st.listener.Close()
	}
}
