package policy

import (
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// FieldNodeName is the one node field a node selector term can match.
const FieldNodeName = "metadata.name"

// HostNodes turns the name of a tenant's virtual Node into the host node it
// stands for; false if no virtual Node has that name.
type HostNodes func(virtualNode string) (hostNode string, ok bool)

// VirtualNode is one of the tenant's virtual Nodes as node selection sees
// it: the labels the tenant sees on it (its own among them: a tenant labels
// its Nodes as any cluster admin does) and the host node it stands for,
// from knest's records (never from the Node object).
type VirtualNode struct {
	Name     string
	Labels   map[string]string
	HostNode string
}

// NodeSelection is a tenant pod's node selection as the host scheduler gets
// it, or why no node of the tenant can ever take the pod.
type NodeSelection struct {
	// NodeSelector holds the tenant's nodeSelector entries on node label
	// keys in NodeLabelKeys.
	NodeSelector map[string]string
	// Affinity is the tenant's node affinity, decided against the virtual
	// Nodes (see HostNodeSelection); nil if none is left.
	Affinity *corev1.NodeAffinity
	// Unschedulable says why no virtual Node matches the pod; "" if some
	// may. The pod then never reaches the host and stays Pending, as it
	// would on any cluster without a matching node.
	Unschedulable string
}

// HostNodeSelection decides a tenant pod's node selection (nodeSelector,
// node affinity and nodeName) as the tenant's virtual Nodes see it, and
// translates what is left for the host. A virtual Node carries the node
// label keys in p.NodeLabelKeys, with its host node's values; its name,
// which is also its kubernetes.io/hostname label; and no other label. So:
//
//   - a requirement on a key in NodeLabelKeys goes to the host as it is;
//   - one on the node's name (the field metadata.name, the hostname label,
//     or spec.nodeName) becomes a metadata.name requirement on the host
//     nodes the named virtual Nodes stand for (names through hostNodes;
//     names of no virtual Node match no node);
//   - one on any other key is decided here as on a node without that label
//     (In, Exists, Gt, Lt: false; NotIn, DoesNotExist: true), exactly what
//     the tenant's own nodes would answer, and never reaches the host: a
//     tenant cannot probe or pick host node labels outside the allowlist.
//
// Preferences are decided the same way; one that no node or every node
// matches changes no score and is left out.
//
// A key outside NodeLabelKeys that the tenant has set on some of its
// virtual Nodes (virtualNodes; nil knows none) is decided on each of them:
// the requirement becomes a metadata.name requirement on the host nodes of
// the virtual Nodes that match (In, Exists, Gt, Lt) or, for NotIn and
// DoesNotExist, on those that do not, so that nodes without a virtual Node,
// which carry no such label, still match. The tenant chooses among the host
// nodes it already has; the label never reaches the host.
func HostNodeSelection(spec *corev1.PodSpec, p *Policy, hostNodes HostNodes, virtualNodes []VirtualNode) NodeSelection {
	if hostNodes == nil {
		hostNodes = func(string) (string, bool) { return "", false }
	}
	d := decider{keys: p.NodeLabelKeys, hostNodes: hostNodes, nodes: virtualNodes}
	var out NodeSelection
	// The nodeSelector's and nodeName's node name requirements are ANDed
	// into every required term.
	var alwaysFields []corev1.NodeSelectorRequirement
	for _, k := range slices.Sorted(maps.Keys(spec.NodeSelector)) {
		v := spec.NodeSelector[k]
		r := corev1.NodeSelectorRequirement{Key: k, Operator: corev1.NodeSelectorOpIn, Values: []string{v}}
		switch res := d.label(r); {
		case res.pass:
			if out.NodeSelector == nil {
				out.NodeSelector = map[string]string{}
			}
			out.NodeSelector[k] = v
		case res.field != nil:
			alwaysFields = append(alwaysFields, *res.field)
		case !res.value:
			out.Unschedulable = fmt.Sprintf("node selector %s=%s matches no node of this cluster: %s", k, v, d.why(k))
			return out
		}
	}
	if spec.NodeName != "" {
		r := corev1.NodeSelectorRequirement{Key: FieldNodeName, Operator: corev1.NodeSelectorOpIn, Values: []string{spec.NodeName}}
		res := d.field(r)
		if res.field == nil && !res.value {
			out.Unschedulable = fmt.Sprintf("node %q does not exist in this cluster", spec.NodeName)
			return out
		}
		alwaysFields = append(alwaysFields, *res.field)
	}

	var na *corev1.NodeAffinity
	if spec.Affinity != nil {
		na = spec.Affinity.NodeAffinity
	}
	var required []corev1.NodeSelectorTerm
	requiredAll := true // no required terms: every node
	if na != nil && na.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		requiredAll = false
		for _, t := range na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			term, value := d.term(t)
			switch {
			case term == nil && value:
				// This term matches every node: so do the terms, ORed.
				requiredAll = true
			case term != nil:
				required = append(required, *term)
			}
		}
		if requiredAll {
			required = nil
		} else if len(required) == 0 {
			out.Unschedulable = "the pod's required node affinity matches no node of this cluster: " + d.whyAny()
			return out
		}
	}
	if len(alwaysFields) > 0 {
		if len(required) == 0 {
			required = []corev1.NodeSelectorTerm{{}}
		}
		for i := range required {
			required[i].MatchFields = append(required[i].MatchFields, alwaysFields...)
		}
	}
	var preferred []corev1.PreferredSchedulingTerm
	if na != nil {
		for _, pt := range na.PreferredDuringSchedulingIgnoredDuringExecution {
			if term, _ := d.term(pt.Preference); term != nil {
				preferred = append(preferred, corev1.PreferredSchedulingTerm{Weight: pt.Weight, Preference: *term})
			}
		}
	}
	if len(required) > 0 || len(preferred) > 0 {
		out.Affinity = &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: preferred}
		if len(required) > 0 {
			out.Affinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: required}
		}
	}
	return out
}

// decider decides node selector requirements against virtual Nodes.
type decider struct {
	keys      []string
	hostNodes HostNodes
	nodes     []VirtualNode
}

// result is a requirement decided: pass goes to the host as it is, field
// is its translation to a host metadata.name requirement, and otherwise
// value is what every virtual Node answers.
type result struct {
	pass  bool
	field *corev1.NodeSelectorRequirement
	value bool
}

func (d decider) label(r corev1.NodeSelectorRequirement) result {
	if slices.Contains(d.keys, r.Key) {
		return result{pass: true}
	}
	if r.Key == corev1.LabelHostname {
		switch r.Operator {
		case corev1.NodeSelectorOpExists:
			return result{value: true}
		case corev1.NodeSelectorOpDoesNotExist:
			return result{value: false}
		}
		return d.field(corev1.NodeSelectorRequirement{Key: FieldNodeName, Operator: r.Operator, Values: r.Values})
	}
	negative := r.Operator == corev1.NodeSelectorOpNotIn || r.Operator == corev1.NodeSelectorOpDoesNotExist
	if res, ok := d.tenantLabel(r, negative); ok {
		return res
	}
	return result{value: negative}
}

// tenantLabel decides a requirement on a key the tenant set on some of its
// virtual Nodes, node by node; false if none carries the key.
func (d decider) tenantLabel(r corev1.NodeSelectorRequirement, negative bool) (result, bool) {
	labelled := false
	for _, n := range d.nodes {
		if _, ok := n.Labels[r.Key]; ok {
			labelled = true
			break
		}
	}
	if !labelled {
		return result{}, false
	}
	sel, err := nodeaffinity.NewNodeSelector(&corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{r}}}})
	if err != nil {
		// An invalid requirement matches no node.
		return result{value: false}, true
	}
	var match, miss []string
	for _, n := range d.nodes {
		if n.HostNode == "" {
			continue
		}
		if sel.Match(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels}}) {
			match = append(match, n.HostNode)
		} else {
			miss = append(miss, n.HostNode)
		}
	}
	slices.Sort(match)
	slices.Sort(miss)
	if negative {
		if len(miss) == 0 {
			return result{value: true}, true
		}
		return result{field: &corev1.NodeSelectorRequirement{Key: FieldNodeName, Operator: corev1.NodeSelectorOpNotIn, Values: slices.Compact(miss)}}, true
	}
	if len(match) == 0 {
		return result{value: false}, true
	}
	return result{field: &corev1.NodeSelectorRequirement{Key: FieldNodeName, Operator: corev1.NodeSelectorOpIn, Values: slices.Compact(match)}}, true
}

// field decides a requirement on the node's name: In and NotIn on the
// names of virtual Nodes, translated to their host nodes' names.
func (d decider) field(r corev1.NodeSelectorRequirement) result {
	if r.Key != FieldNodeName {
		// The API server allows no other field; match nothing.
		return result{value: false}
	}
	var hostNames []string
	for _, v := range r.Values {
		if h, ok := d.hostNodes(v); ok {
			hostNames = append(hostNames, h)
		}
	}
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		if len(hostNames) == 0 {
			return result{value: false}
		}
	case corev1.NodeSelectorOpNotIn:
		if len(hostNames) == 0 {
			return result{value: true}
		}
	default:
		return result{value: false}
	}
	return result{field: &corev1.NodeSelectorRequirement{Key: FieldNodeName, Operator: r.Operator, Values: hostNames}}
}

// term decides one node selector term (its requirements ANDed): nil and
// the term's value when no requirement is left for the host, else the
// host's term.
func (d decider) term(t corev1.NodeSelectorTerm) (*corev1.NodeSelectorTerm, bool) {
	if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
		// An empty term matches no node.
		return nil, false
	}
	out := corev1.NodeSelectorTerm{}
	for _, r := range t.MatchExpressions {
		switch res := d.label(r); {
		case res.pass:
			out.MatchExpressions = append(out.MatchExpressions, *r.DeepCopy())
		case res.field != nil:
			out.MatchFields = append(out.MatchFields, *res.field)
		case !res.value:
			return nil, false
		}
	}
	for _, r := range t.MatchFields {
		switch res := d.field(r); {
		case res.field != nil:
			out.MatchFields = append(out.MatchFields, *res.field)
		case !res.value:
			return nil, false
		}
	}
	if len(out.MatchExpressions) == 0 && len(out.MatchFields) == 0 {
		return nil, true
	}
	return &out, true
}

func (d decider) why(key string) string {
	for _, n := range d.nodes {
		if _, ok := n.Labels[key]; ok {
			return fmt.Sprintf("no node's label %q has a value it selects", key)
		}
	}
	return fmt.Sprintf("nodes here carry no label %q (virtual nodes carry %s, and kubernetes.io/hostname)", key, quoteList(d.keys))
}

func (d decider) whyAny() string {
	return fmt.Sprintf("virtual nodes carry only the labels %s and kubernetes.io/hostname", quoteList(d.keys))
}
