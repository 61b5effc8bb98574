package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	psapi "k8s.io/pod-security-admission/api"
)

// podSecurityPrefix is the domain of the Pod Security namespace labels.
const podSecurityPrefix = "pod-security.kubernetes.io"

// CheckMeta refuses label and annotation keys reserved for knest (the
// knest.io domain and its subdomains: the syncer's ownership marks) and for
// Pod Security (pod-security.kubernetes.io, which the profile fixes). path
// is the path of meta itself: field.NewPath("metadata") for a top-level
// object, field.NewPath("spec", "template", "metadata") for a pod template.
// Namespaces are checked with CheckNamespace instead.
func CheckMeta(meta *metav1.ObjectMeta, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, checkReservedKeys(meta.Labels, path.Child("labels"), false)...)
	errs = append(errs, checkReservedKeys(meta.Annotations, path.Child("annotations"), false)...)
	return errs
}

// CheckNamespace is CheckMeta for a tenant Namespace, except that Pod
// Security labels are allowed when they do not loosen the profile's level:
// the tenant may hold a namespace to a stricter level than the profile
// (the tenant API server's own Pod Security admission enforces it), never
// to a looser one (knest enforces the profile's level whatever the labels
// say, and a label claiming otherwise would only mislead).
func CheckNamespace(meta *metav1.ObjectMeta, path *field.Path, p *Policy) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, checkReservedKeys(meta.Labels, path.Child("labels"), true)...)
	errs = append(errs, checkReservedKeys(meta.Annotations, path.Child("annotations"), false)...)
	profile := p.profile()
	level := profile.PodSecurityLevel()
	for _, k := range slices.Sorted(maps.Keys(meta.Labels)) {
		prefix, mode, _ := strings.Cut(k, "/")
		if strings.ToLower(prefix) != podSecurityPrefix {
			continue
		}
		v := meta.Labels[k]
		at := path.Child("labels").Key(k)
		switch mode {
		case "enforce", "audit", "warn":
			got, err := psapi.ParseLevel(v)
			if err != nil {
				errs = append(errs, field.NotSupported(at, v, levelsAtLeast(level)))
				continue
			}
			if psapi.CompareLevels(got, level) < 0 {
				errs = append(errs, field.Invalid(at, v, fmt.Sprintf(
					"would loosen Pod Security below %s, which %s enforces in every namespace; remove the label or set it to %s",
					level, profile.describe(), level)))
			}
		case "enforce-version", "audit-version", "warn-version":
			if _, err := psapi.ParseVersion(v); err != nil {
				errs = append(errs, field.Invalid(at, v, err.Error()))
			}
		default:
			errs = append(errs, reservedPodSecurityKey(at, v))
		}
	}
	return errs
}

// checkReservedKeys refuses reserved keys of one map; Pod Security keys
// are left to the caller when podSecurityAllowed.
func checkReservedKeys(m map[string]string, path *field.Path, podSecurityAllowed bool) field.ErrorList {
	var errs field.ErrorList
	for _, k := range slices.Sorted(maps.Keys(m)) {
		prefix, _, found := strings.Cut(k, "/")
		if !found {
			continue
		}
		// API validation lower-cases key prefixes before checking them;
		// do the same so case cannot dodge the check.
		prefix = strings.ToLower(prefix)
		switch {
		case prefix == "knest.io" || strings.HasSuffix(prefix, ".knest.io"):
			errs = append(errs, field.Invalid(path.Key(k), m[k],
				"the knest.io domain and its subdomains are reserved for knest; use a key of your own"))
		case prefix == podSecurityPrefix && !podSecurityAllowed:
			errs = append(errs, reservedPodSecurityKey(path.Key(k), m[k]))
		}
	}
	return errs
}

func reservedPodSecurityKey(path *field.Path, value string) *field.Error {
	return field.Invalid(path, value,
		"the pod-security.kubernetes.io domain is reserved: the tenant's isolation profile fixes Pod Security; use a key of your own")
}

// levelsAtLeast lists the Pod Security levels no looser than level.
func levelsAtLeast(level psapi.Level) []psapi.Level {
	var out []psapi.Level
	for _, l := range []psapi.Level{psapi.LevelPrivileged, psapi.LevelBaseline, psapi.LevelRestricted} {
		if psapi.CompareLevels(l, level) >= 0 {
			out = append(out, l)
		}
	}
	return out
}
