// Package pools describes the devcluster's simulated node pools and reads
// them from a file. It is apart from the devcluster so that checking a pool
// file does not link the control plane.
package pools

import (
	"errors"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

const (
	// Label names the pool a node belongs to.
	Label = "knest.io/pool"
	// Sandboxed is the pool the "kata" RuntimeClass targets.
	Sandboxed = "sandboxed"
	// General is the pool of ordinary nodes.
	General = "general"
)

// NodePool is a group of identical simulated nodes.
type NodePool struct {
	Name    string            `json:"name"`
	Count   int               `json:"count"`
	Labels  map[string]string `json:"labels,omitempty"`
	Taints  []corev1.Taint    `json:"taints,omitempty"`
	CPU     string            `json:"cpu"`
	Memory  string            `json:"memory"`
	MaxPods int               `json:"maxPods"`
}

// Defaults returns n general nodes and m nodes of the sandboxed pool
// (labelled and tainted knest.io/pool=sandboxed).
func Defaults(general, sandboxed int) []NodePool {
	return []NodePool{
		{Name: General, Count: general, CPU: "32", Memory: "128Gi", MaxPods: 1000},
		{
			Name: Sandboxed, Count: sandboxed, CPU: "32", Memory: "128Gi", MaxPods: 1000,
			Taints: []corev1.Taint{{Key: Label, Value: Sandboxed, Effect: corev1.TaintEffectNoSchedule}},
		},
	}
}

// Load reads a YAML list of pools; unset capacity fields take the defaults
// of the general pool.
func Load(path string) ([]NodePool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node pools: %w", err)
	}
	var pools []NodePool
	if err := yaml.UnmarshalStrict(data, &pools); err != nil {
		return nil, fmt.Errorf("node pools file %s: %w", path, err)
	}
	def := Defaults(0, 0)[0]
	for i := range pools {
		if pools[i].CPU == "" {
			pools[i].CPU = def.CPU
		}
		if pools[i].Memory == "" {
			pools[i].Memory = def.Memory
		}
		if pools[i].MaxPods == 0 {
			pools[i].MaxPods = def.MaxPods
		}
	}
	if err := Validate(pools); err != nil {
		return nil, fmt.Errorf("node pools file %s: %w", path, err)
	}
	return pools, nil
}

// Validate reports every problem with a set of pools.
func Validate(pools []NodePool) error {
	var errs []error
	names := map[string]bool{}
	total := 0
	for _, p := range pools {
		if msgs := validation.IsDNS1123Label(p.Name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("node pool name %q is invalid: %v", p.Name, msgs))
		}
		if names[p.Name] {
			errs = append(errs, fmt.Errorf("node pool %q is defined twice", p.Name))
		}
		names[p.Name] = true
		if p.Count < 0 {
			errs = append(errs, fmt.Errorf("node pool %q has a negative count", p.Name))
		}
		total += p.Count
		for _, q := range []string{p.CPU, p.Memory} {
			if _, err := resource.ParseQuantity(q); err != nil {
				errs = append(errs, fmt.Errorf("node pool %q: capacity %q: %w", p.Name, q, err))
			}
		}
		if p.MaxPods <= 0 {
			errs = append(errs, fmt.Errorf("node pool %q needs a positive maxPods", p.Name))
		}
		for k, v := range p.Labels {
			if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
				errs = append(errs, fmt.Errorf("node pool %q: label key %q: %v", p.Name, k, msgs))
			}
			if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
				errs = append(errs, fmt.Errorf("node pool %q: label %s=%q: %v", p.Name, k, v, msgs))
			}
		}
		for _, t := range p.Taints {
			switch t.Effect {
			case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
			default:
				errs = append(errs, fmt.Errorf("node pool %q: taint %s has effect %q; use NoSchedule, PreferNoSchedule or NoExecute", p.Name, t.Key, t.Effect))
			}
		}
	}
	if total == 0 {
		errs = append(errs, errors.New("node pools have no nodes"))
	}
	return errors.Join(errs...)
}
