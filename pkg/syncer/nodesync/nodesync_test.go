package nodesync

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPoolNode(t *testing.T) {
	t.Parallel()
	ready := []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	sandboxed := corev1.Taint{Key: "knest.io/pool", Value: "sandboxed", Effect: corev1.TaintEffectNoSchedule}
	tolerateSandboxed := []corev1.Toleration{{Key: "knest.io/pool", Operator: corev1.TolerationOpEqual, Value: "sandboxed", Effect: corev1.TaintEffectNoSchedule}}
	tests := []struct {
		name        string
		node        corev1.Node
		tolerations []corev1.Toleration
		want        bool
	}{
		{name: "a Ready, schedulable, untainted node is in the pool", node: corev1.Node{Status: corev1.NodeStatus{Conditions: ready}}, want: true},
		{name: "a node that is not Ready is not", node: corev1.Node{}},
		{name: "a cordoned node is not", node: corev1.Node{Spec: corev1.NodeSpec{Unschedulable: true}, Status: corev1.NodeStatus{Conditions: ready}}},
		{name: "a node whose taint the host pods do not tolerate runs none of them", node: corev1.Node{Spec: corev1.NodeSpec{Taints: []corev1.Taint{sandboxed}}, Status: corev1.NodeStatus{Conditions: ready}}},
		{name: "a tainted node the host pods tolerate is in the pool", node: corev1.Node{Spec: corev1.NodeSpec{Taints: []corev1.Taint{sandboxed}}, Status: corev1.NodeStatus{Conditions: ready}}, tolerations: tolerateSandboxed, want: true},
		{name: "a PreferNoSchedule taint keeps no pod off", node: corev1.Node{Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "x", Effect: corev1.TaintEffectPreferNoSchedule}}}, Status: corev1.NodeStatus{Conditions: ready}}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := PoolNode(&tt.node, tt.tolerations); got != tt.want {
				t.Errorf("PoolNode = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPoolNodeTransformKeepsOnlyWhatThePoolNeeds(t *testing.T) {
	t.Parallel()
	in := &corev1.Node{}
	in.Name = "worker-1"
	in.Labels = map[string]string{corev1.LabelTopologyZone: "a", "secret.example.com/rack": "r1"}
	in.Annotations = map[string]string{"a": "b"}
	in.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}}
	in.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Message: "kubelet is posting ready status"}}
	out, err := PoolNodeTransform(in)
	if err != nil {
		t.Fatal(err)
	}
	n := out.(*corev1.Node)
	if n.Name != "worker-1" || n.Labels[corev1.LabelTopologyZone] != "a" || len(n.Labels) != 1 || n.Annotations != nil || n.Status.Addresses != nil {
		t.Errorf("transform kept %+v", n)
	}
	if !PoolNode(n, nil) {
		t.Errorf("the transformed node lost what PoolNode needs")
	}
}
