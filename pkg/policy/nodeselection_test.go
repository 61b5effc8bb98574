package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestHostNodeSelection(t *testing.T) {
	t.Parallel()
	pol := &Policy{NodeLabelKeys: []string{corev1.LabelArchStable, corev1.LabelTopologyZone}}
	hostNodes := func(alias string) (string, bool) {
		h, ok := map[string]string{"knest-node-a": "host-a", "knest-node-b": "host-b"}[alias]
		return h, ok
	}
	req := func(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	required := func(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
	}
	hostRequired := func(terms ...corev1.NodeSelectorTerm) *corev1.NodeAffinity {
		return &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}
	}
	zoneA := req(corev1.LabelTopologyZone, corev1.NodeSelectorOpIn, "a")
	tests := []struct {
		name          string
		spec          corev1.PodSpec
		want          NodeSelection
		unschedulable string
	}{
		{name: "nothing selected: nothing to translate"},
		{
			name: "allowed keys go to the host as they are",
			spec: corev1.PodSpec{NodeSelector: map[string]string{corev1.LabelArchStable: "arm64"}, Affinity: required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zoneA}})},
			want: NodeSelection{NodeSelector: map[string]string{corev1.LabelArchStable: "arm64"}, Affinity: hostRequired(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zoneA}})},
		},
		{
			name:          "a nodeSelector key no virtual node carries leaves the pod unschedulable (the conformance quota pods)",
			spec:          corev1.PodSpec{NodeSelector: map[string]string{"x-test.k8s.io/unsatisfiable": "not-schedulable", corev1.LabelArchStable: "arm64"}},
			unschedulable: `node selector x-test.k8s.io/unsatisfiable=not-schedulable matches no node`,
		},
		{
			name: "a host label outside the allowlist never reaches the host: DoesNotExist is true for every virtual node",
			spec: corev1.PodSpec{Affinity: required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
				req("node-role.kubernetes.io/control-plane", corev1.NodeSelectorOpDoesNotExist), zoneA,
			}})},
			want: NodeSelection{Affinity: hostRequired(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zoneA}})},
		},
		{
			name: "a term that every virtual node matches makes the required affinity match every node",
			spec: corev1.PodSpec{Affinity: required(
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zoneA}},
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{req("example.com/secret-host-label", corev1.NodeSelectorOpNotIn, "x")}},
			)},
		},
		{
			name: "a term no virtual node matches drops out of the OR",
			spec: corev1.PodSpec{Affinity: required(
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{req("example.com/secret-host-label", corev1.NodeSelectorOpExists)}},
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zoneA}},
			)},
			want: NodeSelection{Affinity: hostRequired(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zoneA}})},
		},
		{
			name: "no term matching: unschedulable",
			spec: corev1.PodSpec{Affinity: required(
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{req("example.com/gpu", corev1.NodeSelectorOpExists)}},
				corev1.NodeSelectorTerm{},
			)},
			unschedulable: "required node affinity matches no node",
		},
		{
			name: "a DaemonSet pod's node name field becomes its host node's, in every term",
			spec: corev1.PodSpec{Affinity: required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{req(FieldNodeName, corev1.NodeSelectorOpIn, "knest-node-a")}})},
			want: NodeSelection{Affinity: hostRequired(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{req(FieldNodeName, corev1.NodeSelectorOpIn, "host-a")}})},
		},
		{
			name: "nodeName and the hostname label become node name fields ANDed into every term",
			spec: corev1.PodSpec{
				NodeName: "knest-node-b", NodeSelector: map[string]string{corev1.LabelHostname: "knest-node-b"},
				Affinity: required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zoneA}}),
			},
			want: NodeSelection{Affinity: hostRequired(corev1.NodeSelectorTerm{
				MatchExpressions: []corev1.NodeSelectorRequirement{zoneA},
				MatchFields: []corev1.NodeSelectorRequirement{
					req(FieldNodeName, corev1.NodeSelectorOpIn, "host-b"), req(FieldNodeName, corev1.NodeSelectorOpIn, "host-b"),
				},
			})},
		},
		{
			name:          "a node name that is no virtual node's (a host node's, say) matches nothing",
			spec:          corev1.PodSpec{NodeName: "host-a"},
			unschedulable: `node "host-a" does not exist`,
		},
		{
			name: "NotIn names of no virtual node match every node",
			spec: corev1.PodSpec{Affinity: required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{req(FieldNodeName, corev1.NodeSelectorOpNotIn, "host-a")}})},
		},
		{
			name: "preferences no node or every node matches are left out; others are translated",
			spec: corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
				{Weight: 1, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{req("example.com/fast", corev1.NodeSelectorOpExists)}}},
				{Weight: 2, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{req("example.com/fast", corev1.NodeSelectorOpDoesNotExist)}}},
				{Weight: 3, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{req(corev1.LabelHostname, corev1.NodeSelectorOpIn, "knest-node-a")}}},
			}}}},
			want: NodeSelection{Affinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
				{Weight: 3, Preference: corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{req(FieldNodeName, corev1.NodeSelectorOpIn, "host-a")}}},
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := HostNodeSelection(&tt.spec, pol, hostNodes, nil)
			if tt.unschedulable != "" {
				if !strings.Contains(got.Unschedulable, tt.unschedulable) {
					t.Fatalf("Unschedulable = %q, want one containing %q", got.Unschedulable, tt.unschedulable)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("HostNodeSelection (-want +got):\n%s", diff)
			}
		})
	}
}

// Labels a tenant set on its virtual Nodes select among them, as on any
// cluster: the choice reaches the host as the host node names of the
// matching virtual Nodes, never as the label.
func TestHostNodeSelectionOnTenantLabels(t *testing.T) {
	t.Parallel()
	pol := &Policy{NodeLabelKeys: []string{corev1.LabelArchStable}}
	nodes := []VirtualNode{
		{Name: "knest-node-a", HostNode: "host-a", Labels: map[string]string{"color": "blue", corev1.LabelArchStable: "amd64"}},
		{Name: "knest-node-b", HostNode: "host-b", Labels: map[string]string{"color": "red"}},
		{Name: "knest-node-c", HostNode: "host-c", Labels: map[string]string{}},
	}
	name := func(op corev1.NodeSelectorOperator, hosts ...string) *corev1.NodeAffinity {
		return &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
			{MatchFields: []corev1.NodeSelectorRequirement{{Key: FieldNodeName, Operator: op, Values: hosts}}},
		}}}
	}
	affinity := func(r corev1.NodeSelectorRequirement) *corev1.Affinity {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
			{MatchExpressions: []corev1.NodeSelectorRequirement{r}},
		}}}}
	}
	tests := []struct {
		name          string
		spec          corev1.PodSpec
		want          *corev1.NodeAffinity
		unschedulable string
	}{
		{name: "nodeSelector on a tenant label: the matching node's host", spec: corev1.PodSpec{NodeSelector: map[string]string{"color": "blue"}}, want: name(corev1.NodeSelectorOpIn, "host-a")},
		{name: "no node has the value", spec: corev1.PodSpec{NodeSelector: map[string]string{"color": "green"}}, unschedulable: `no node's label "color"`},
		{name: "Exists: every labelled node", spec: corev1.PodSpec{Affinity: affinity(corev1.NodeSelectorRequirement{Key: "color", Operator: corev1.NodeSelectorOpExists})}, want: name(corev1.NodeSelectorOpIn, "host-a", "host-b")},
		{name: "NotIn: every node but the labelled ones that fail, nodes without a virtual Node too", spec: corev1.PodSpec{Affinity: affinity(corev1.NodeSelectorRequirement{Key: "color", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"red"}})}, want: name(corev1.NodeSelectorOpNotIn, "host-b")},
		{name: "a key no node carries is decided as before", spec: corev1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"}}, unschedulable: `carry no label "disk"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := HostNodeSelection(&tt.spec, pol, nil, nodes)
			if tt.unschedulable != "" {
				if !strings.Contains(got.Unschedulable, tt.unschedulable) {
					t.Fatalf("Unschedulable = %q, want one containing %q", got.Unschedulable, tt.unschedulable)
				}
				return
			}
			if got.Unschedulable != "" || len(got.NodeSelector) > 0 {
				t.Fatalf("HostNodeSelection = %+v, want only node affinity", got)
			}
			if diff := cmp.Diff(tt.want, got.Affinity); diff != "" {
				t.Errorf("host node affinity (-want +got):\n%s", diff)
			}
		})
	}
}
