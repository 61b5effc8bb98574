package kubelet

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
)

// watchingListener wraps every connection in a watchedConn.
type watchingListener struct{ net.Listener }

func (l watchingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &watchedConn{Conn: c}, nil
}

// watchedConn ends its requests' context when the client goes away. The HTTP
// server does that itself only until a handler takes the connection over,
// as exec, attach and port-forward do; without it, an attach or a command
// would outlive its client.
type watchedConn struct {
	net.Conn
	cancel context.CancelFunc
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	var netErr net.Error
	// The HTTP server interrupts its own reads with deadlines; those are
	// not the client leaving.
	if err != nil && c.cancel != nil && !(errors.As(err, &netErr) && netErr.Timeout()) {
		c.cancel()
	}
	return n, err
}

func (c *watchedConn) Close() error {
	if c.cancel != nil {
		c.cancel()
	}
	return c.Conn.Close()
}

// connContext gives each connection a context its watchedConn ends. It runs
// before the connection's first read.
func connContext(ctx context.Context, c net.Conn) context.Context {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return ctx
	}
	wc, ok := tc.NetConn().(*watchedConn)
	if !ok {
		return ctx
	}
	ctx, wc.cancel = context.WithCancel(ctx)
	return ctx
}
