package policy

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// CheckObjectBytes refuses a ConfigMap or Secret whose data is larger than
// the policy's cap: it reaches the host whenever a pod references it, and
// one tenant churning large objects must not fill the host's datastore.
// size is the sum of its keys' and values' lengths.
func CheckObjectBytes(size int, p *Policy) field.ErrorList {
	if max := p.HostLimits.ObjectBytes; max > 0 && size > max {
		return field.ErrorList{field.Invalid(field.NewPath("data"), fmt.Sprintf("%d bytes", size), fmt.Sprintf(
			"is larger than the %d bytes %s allows a ConfigMap or Secret (it reaches the host when a pod uses it); split it, or ask the operator to raise hostLimits.objectBytes",
			max, p.Describe()))}
	}
	return nil
}

// CheckCount refuses the creation of one more object of a kind whose count
// the policy caps (EndpointSlices, NetworkPolicies): have is how many the
// tenant has, limitName the policy field.
func CheckCount(kind string, have, max int, limitName string, p *Policy) field.ErrorList {
	if max <= 0 || have < max {
		return nil
	}
	return field.ErrorList{field.Forbidden(field.NewPath("metadata"), fmt.Sprintf(
		"the tenant has %d %s, the most %s allows (they reach the host, where every node watches them); delete some, or ask the operator to raise hostLimits.%s",
		have, kind, p.Describe(), limitName))}
}
