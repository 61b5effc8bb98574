package hosttoken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	jose "gopkg.in/go-jose/go-jose.v2"
	"k8s.io/client-go/rest"
)

// DefaultMinRefresh is how often at most a KeySet refetches the host's keys
// when a token names a key it does not know: a host rotates its keys rarely,
// and a tenant sending tokens with made-up key IDs must not make knestd
// hammer the host API server.
const DefaultMinRefresh = 30 * time.Second

// discoveryPath is the host API server's OpenID Connect discovery document.
const discoveryPath = "/.well-known/openid-configuration"

// KeySet holds the host service-account issuer's public keys, fetched
// through the host API server connection: the discovery document, then the
// path of its jwks_uri on the same server (a host may advertise an external
// jwks_uri, say a bucket, but its API server serves the same keys; knestd
// dials nothing else).
type KeySet struct {
	// Host is a REST client of the host API server.
	Host rest.Interface
	// MinRefresh bounds refetches; DefaultMinRefresh if zero.
	MinRefresh time.Duration

	mu      sync.Mutex
	issuer  string
	keys    jose.JSONWebKeySet
	fetched time.Time
	fetches int
}

type discovery struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// Issuer fetches the keys if it never did and returns the host's issuer.
func (k *KeySet) Issuer(ctx context.Context) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.issuer == "" {
		if !k.fetched.IsZero() && time.Since(k.fetched) < k.minRefresh() {
			return "", errors.New("the host's service-account issuer discovery failed moments ago")
		}
		if err := k.fetchLocked(ctx); err != nil {
			return "", err
		}
	}
	return k.issuer, nil
}

func (k *KeySet) minRefresh() time.Duration {
	if k.MinRefresh == 0 {
		return DefaultMinRefresh
	}
	return k.MinRefresh
}

// key returns the key with ID kid, refetching the set once if it is not
// known and the last fetch is older than MinRefresh (a host key rotation).
func (k *KeySet) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if found := k.keys.Key(kid); len(found) > 0 {
		return &found[0], nil
	}
	if !k.fetched.IsZero() && time.Since(k.fetched) < k.minRefresh() {
		return nil, fmt.Errorf("no host service-account key %q (keys fetched %s ago)", kid, time.Since(k.fetched).Round(time.Second))
	}
	if err := k.fetchLocked(ctx); err != nil {
		return nil, err
	}
	if found := k.keys.Key(kid); len(found) > 0 {
		return &found[0], nil
	}
	return nil, fmt.Errorf("no host service-account key %q", kid)
}

// Fetches is how many times the keys were fetched (for tests and metrics).
func (k *KeySet) Fetches() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fetches
}

func (k *KeySet) fetchLocked(ctx context.Context) error {
	k.fetched = time.Now()
	k.fetches++
	raw, err := k.Host.Get().AbsPath(discoveryPath).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("failed to get %s from host cluster: %w", discoveryPath, err)
	}
	var d discovery
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("host cluster's %s: %w", discoveryPath, err)
	}
	if d.Issuer == "" || d.JWKSURI == "" {
		return errors.New("host cluster's issuer discovery names no issuer or jwks_uri")
	}
	u, err := url.Parse(d.JWKSURI)
	if err != nil {
		return fmt.Errorf("host cluster's jwks_uri %q: %w", d.JWKSURI, err)
	}
	raw, err = k.Host.Get().AbsPath(u.Path).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("failed to get %s from host cluster: %w", u.Path, err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return fmt.Errorf("host cluster's %s: %w", u.Path, err)
	}
	if k.issuer != "" && k.issuer != d.Issuer {
		// Tokens of the old issuer stop verifying; say so.
		return fmt.Errorf("host service-account issuer changed from %q to %q: restart knestd", k.issuer, d.Issuer)
	}
	k.issuer, k.keys = d.Issuer, set
	return nil
}
