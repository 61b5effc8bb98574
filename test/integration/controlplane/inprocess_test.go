// Package controlplane holds integration tests that run a control plane
// (etcd, kube-apiserver, kube-controller-manager) inside the test binary,
// as knestd does, to test what only code of the same process can reach.
// They are skipped under -short.
package controlplane

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/pkg/controlplane"
	"github.com/knest-dev/knest/pkg/controlplane/inprocess"
	"github.com/knest-dev/knest/pkg/pki"
)

// knestd's in-process clients (syncer, DNS, kubelet) reach the API server
// of their process through its whole filter chain, as knestd's identity,
// with watches that stream; once the API server stops they fail.
func TestIntegrationInProcessClients(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	inst, err := controlplane.Start(ctx, controlplane.Spec{
		Name: "inprocess", DataDir: filepath.Join(dir, "data"),
		BindAddress: "127.0.0.1", AdvertiseAddress: net.IPv4(127, 0, 0, 1),
		ServiceCIDR: "10.96.0.0/16", ClusterDomain: "cluster.local",
		Controllers: []string{"serviceaccount-controller"},
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			inst.Stop("test done")
		}
	}()
	local, err := kubernetes.NewForConfig(inst.LocalConfig())
	if err != nil {
		t.Fatal(err)
	}

	review, err := local.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("in-process SelfSubjectReview: %v", err)
	}
	if u := review.Status.UserInfo; u.Username != pki.InternalUser || !slices.Contains(u.Groups, "system:masters") || !slices.Contains(u.Groups, "system:authenticated") {
		t.Errorf("in-process requests authenticate as %q %v, want %q in system:masters and system:authenticated", u.Username, u.Groups, pki.InternalUser)
	}

	// A watch through the in-process transport sees what the tenant's
	// admin writes over the network.
	w, err := local.CoreV1().ConfigMaps(metav1.NamespaceDefault).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("in-process watch: %v", err)
	}
	defer w.Stop()
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	if err := inst.WriteAdminKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	adminConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kubernetes.NewForConfig(adminConfig)
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "seen-in-process"}}
	if _, err := admin.CoreV1().ConfigMaps(metav1.NamespaceDefault).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-w.ResultChan():
		got, ok := e.Object.(*corev1.ConfigMap)
		if e.Type != watch.Added || !ok || got.Name != cm.Name {
			t.Errorf("in-process watch got %s %T %v, want ADDED ConfigMap %s", e.Type, e.Object, e.Object, cm.Name)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the in-process watch saw no event")
	}

	// Admission runs: a write the API server validates is refused in
	// process as over the network.
	bad := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "Not_A_Name"}}
	if _, err := local.CoreV1().ConfigMaps(metav1.NamespaceDefault).Create(ctx, bad, metav1.CreateOptions{}); err == nil {
		t.Error("the API server accepted an invalid name in process")
	}

	inst.Stop("test done")
	stopped = true
	if _, err := local.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !errors.Is(err, inprocess.ErrNotServing) {
		t.Errorf("after the stop an in-process request got %v, want %v", err, inprocess.ErrNotServing)
	}
}
