package dev

import (
	"bufio"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/knest-dev/knest/test/integration/framework"
)

// upProcess is a running `knest dev up`.
type upProcess struct {
	cmd    *exec.Cmd
	exited chan error
}

func startUp(t *testing.T, dir string, args ...string) *upProcess {
	t.Helper()
	cmd := exec.Command(framework.KnestPath(), append([]string{"dev", "up", "--dir", dir}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// What dev up says when it fails, and its processes' logs, are in the
	// test's output when the test fails (the directory goes with it).
	stderr, err := os.Create(filepath.Join(t.TempDir(), "up.stderr"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderr
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*"))
		framework.TailNow(t, append([]string{stderr.Name()}, logs...)...)
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &upProcess{cmd: cmd, exited: make(chan error, 1)}
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "knest dev is up") {
				close(up)
			}
		}
	}()
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	select {
	case <-up:
	case err := <-p.exited:
		t.Fatalf("knest dev up exited before it was up: %v; logs in %s", err, filepath.Join(dir, "logs"))
	case <-time.After(3 * time.Minute):
		t.Fatalf("knest dev up not up within 3 minutes; logs in %s", filepath.Join(dir, "logs"))
	}
	return p
}

// processesUsing lists the processes whose command line mentions dir.
func processesUsing(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() || strings.Trim(e.Name(), "0123456789") != "" {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(cmdline), dir) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}

func TestIntegrationDevUpDown(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	// --host-node-info: each knestd checks its grant at start, so coming up
	// at all shows the chart granted it.
	p := startUp(t, dir, "--tenants", "alpha,beta", "--host-node-info")

	for _, kc := range []string{"host.kubeconfig", "tenants/alpha.kubeconfig", "tenants/beta.kubeconfig"} {
		client := framework.Client(t, framework.AdminConfig(t, filepath.Join(dir, kc)))
		if _, err := client.CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{}); err != nil {
			t.Errorf("%s does not reach its cluster: %v", kc, err)
		}
	}
	host := framework.Client(t, framework.AdminConfig(t, filepath.Join(dir, "host.kubeconfig")))
	for _, ns := range []string{"knest-alpha", "knest-beta"} {
		if _, err := host.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{}); err != nil {
			t.Errorf("host namespace %s: %v", ns, err)
		}
	}

	t.Run("--host-node-info and pool nodes grant each tenant get, list and watch on nodes, and nothing more", func(t *testing.T) {
		for _, tenant := range []string{"alpha", "beta"} {
			name := "knest:host-node-info:knest-" + tenant + ":" + tenant
			role, err := host.RbacV1().ClusterRoles().Get(t.Context(), name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("tenant %s: %v", tenant, err)
			}
			if len(role.Rules) != 1 || strings.Join(role.Rules[0].Resources, ",") != "nodes" || strings.Join(role.Rules[0].Verbs, ",") != "get,list,watch" {
				t.Errorf("tenant %s: ClusterRole %s has rules %+v, want get, list and watch on nodes only", tenant, name, role.Rules)
			}
			if _, err := host.RbacV1().ClusterRoleBindings().Get(t.Context(), name, metav1.GetOptions{}); err != nil {
				t.Errorf("tenant %s: %v", tenant, err)
			}
		}
	})

	t.Run("a tenant's kubernetes Service is its knestd's host Service, never the host API server", func(t *testing.T) {
		hostAPI, err := host.CoreV1().Services("default").Get(t.Context(), "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tenant := range []string{"alpha", "beta"} {
			tc := framework.Client(t, framework.AdminConfig(t, filepath.Join(dir, "tenants", tenant+".kubeconfig")))
			tenantAPI, err := tc.CoreV1().Services("default").Get(t.Context(), "kubernetes", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			front, err := host.CoreV1().Services("knest-"+tenant).Get(t.Context(), "knestd", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if tenantAPI.Spec.ClusterIP != front.Spec.ClusterIP || tenantAPI.Spec.ClusterIP == hostAPI.Spec.ClusterIP {
				t.Errorf("tenant %s: default/kubernetes is %s, its knestd host Service %s, the host API server %s",
					tenant, tenantAPI.Spec.ClusterIP, front.Spec.ClusterIP, hostAPI.Spec.ClusterIP)
			}
		}
	})

	t.Run("a second up on the same dir is refused and leaves it alone", func(t *testing.T) {
		before := snapshot(t, dir)
		out, err := framework.Run(t, 30*time.Second, framework.KnestPath(), "dev", "up", "--dir", dir)
		assertOneLineError(t, out, err, "holds a running knest dev environment")
		after := snapshot(t, dir)
		for path, size := range before {
			if _, ok := after[path]; !ok {
				t.Errorf("%s disappeared (size was %d)", path, size)
			}
		}
		if _, err := host.CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{}); err != nil {
			t.Errorf("the running host stopped answering: %v", err)
		}
	})

	out, err := framework.Run(t, time.Minute, framework.KnestPath(), "dev", "down", "--dir", dir)
	if err != nil {
		t.Fatalf("knest dev down: %v\n%s", err, out)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("knest dev up still runs after knest dev down returned")
	}
	if left := processesUsing(t, dir); len(left) > 0 {
		t.Errorf("processes left behind after knest dev down:\n%s", strings.Join(left, "\n"))
	}
	out, err = framework.Run(t, 10*time.Second, framework.KnestPath(), "dev", "down", "--dir", dir)
	assertOneLineError(t, out, err, "no knest dev environment is running in")
}

func TestIntegrationDevBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "an invalid tenant name", args: []string{"--tenants", "Team_A"}, want: `tenant name "Team_A" is invalid`},
		{name: "a tenant name longer than knest create accepts", args: []string{"--tenants", strings.Repeat("t", 54)}, want: "is longer than 53 characters"},
		{name: "an occupied port", args: []string{"--port", fmt.Sprint(port)}, want: fmt.Sprintf("port %d is not available", port)},
		{name: "no general nodes", args: []string{"--nodes", "0"}, want: "--nodes must be at least 1"},
		{name: "a bad node pools file", args: []string{"--pools", writeFile(t, "- name: gpu\n  count: 1\n  cpu: lots\n")}, want: `capacity "lots"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "precious"), []byte("keep"), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := framework.Run(t, 30*time.Second, framework.KnestPath(), append([]string{"dev", "up", "--dir", dir}, tc.args...)...)
			assertOneLineError(t, out, err, tc.want)
			data, rerr := os.ReadFile(filepath.Join(dir, "precious"))
			if rerr != nil || string(data) != "keep" {
				t.Errorf("existing data in --dir was touched: %v %q", rerr, data)
			}
			if left := processesUsing(t, dir); len(left) > 0 {
				t.Errorf("processes left behind:\n%s", strings.Join(left, "\n"))
			}
		})
	}
}

func assertOneLineError(t *testing.T, out string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("succeeded, want a failure naming %q; output:\n%s", want, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "knest: ") || !strings.Contains(lines[0], want) {
		t.Errorf("want one line 'knest: ...%s...', got:\n%s", want, out)
	}
}

func snapshot(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil && !d.IsDir() {
			out[path] = info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
