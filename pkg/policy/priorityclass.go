package policy

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// CheckPriorityClass refuses a tenant PriorityClass whose value exceeds the
// policy's cap. The cap keeps tenant priorities below the host's system
// classes; which tenant classes reach the host at all is the policy's map
// of class names (see CheckPod and Policy.HostPriorityClass). Errors name
// the field "value".
func CheckPriorityClass(value int32, p *Policy) field.ErrorList {
	limit := highestUserPriority
	if p.PriorityClasses.MaxValue != nil {
		limit = *p.PriorityClasses.MaxValue
	}
	if value <= limit {
		return nil
	}
	return field.ErrorList{field.Invalid(field.NewPath("value"), value, fmt.Sprintf(
		"must be at most %d in the %s profile: higher priorities are reserved for the host", limit, p.profile()))}
}
