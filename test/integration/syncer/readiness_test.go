package syncer

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/knest-dev/knest/internal/readyzcheck"
	"github.com/knest-dev/knest/pkg/devenv"
	"github.com/knest-dev/knest/test/integration/framework"
)

// TestIntegrationReadiness checks knestd's /readyz covers the syncer's
// caches, not only the API server: with its host identity unable to list
// host Events, the syncer's host cache cannot sync, and knestd stays not
// ready (devenv, as knest dev, waits on /readyz and says which check
// fails) although its API server serves; once the grant is back, the
// cache syncs and knestd is ready, the DNS server answering too.
func TestIntegrationReadiness(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := setUpHost(t, devenv.DefaultHost(), nil)
	ctx := t.Context()
	roles := e.host.RbacV1().Roles(hostNamespace)
	role, err := roles.Get(ctx, "knestd", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	full := role.DeepCopy()
	role.Rules = slices.DeleteFunc(role.Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, "events") })
	if len(role.Rules) != len(full.Rules)-1 {
		t.Fatalf("the knestd Role has no rule for events alone: %v", full.Rules)
	}
	if _, err := roles.Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The host's authorizer sees the change through its own informer: wait
	// until knestd's identity is refused, or a fast knestd lists Events
	// before the change takes effect.
	identity := framework.Client(t, framework.AdminConfig(t, e.identity))
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := identity.CoreV1().Events(hostNamespace).List(ctx, metav1.ListOptions{Limit: 1})
		return apierrors.IsForbidden(err), nil
	}); err != nil {
		t.Fatalf("knestd's host identity may still list Events after the rule was removed: %v", err)
	}

	// Not ready: the wait gives up, naming the syncer's check.
	waitCtx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	err = e.dev.StartKnestd(waitCtx, e.it, "--dns-address=127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), readyzcheck.Syncer) {
		t.Fatalf("StartKnestd = %v, want a wait that gives up on %s", err, readyzcheck.Syncer)
	}
	tenant := framework.Client(t, framework.AdminConfig(t, filepath.Join(e.tenantDir, "admin.kubeconfig")))
	readyz := func(ctx context.Context, exclude ...string) (string, error) {
		req := tenant.Discovery().RESTClient().Get().AbsPath("/readyz").Param("verbose", "")
		for _, x := range exclude {
			req = req.Param("exclude", x)
		}
		body, err := req.DoRaw(ctx)
		return string(body), err
	}
	if body, err := readyz(ctx); err == nil || !strings.Contains(body, "[-]"+readyzcheck.Syncer+" failed") {
		t.Errorf("/readyz = %v:\n%s\nwant the syncer's check failing", err, body)
	}
	// The DNS server may still be syncing its own cache on a busy machine.
	if err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := readyz(ctx, readyzcheck.Syncer)
		return err == nil, nil
	}); err != nil {
		body, _ := readyz(ctx, readyzcheck.Syncer)
		t.Errorf("/readyz without the syncer's check never ready:\n%s\nwant the rest ready (the API server serves)", body)
	}

	// The grant back: ready, every check passing.
	role, err = roles.Get(ctx, "knestd", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	role.Rules = full.Rules
	if _, err := roles.Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var body string
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		body, err = readyz(ctx)
		return err == nil, nil
	}); err != nil {
		t.Fatalf("knestd not ready after the grant came back:\n%s", body)
	}
	for _, check := range []string{readyzcheck.Syncer, readyzcheck.DNS} {
		if !strings.Contains(body, "[+]"+check+" ok") {
			t.Errorf("/readyz does not show %s passing:\n%s", check, body)
		}
	}
}
