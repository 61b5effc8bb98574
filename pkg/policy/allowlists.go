package policy

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// DefaultContainerAnnotation names the container kubectl logs and exec pick
// when none is given; tools read it from the host pod too.
const DefaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// AllowsLabel reports whether a tenant label key reaches host objects as
// it is.
func (m MetadataAllowlist) AllowsLabel(key string) bool { return allowsKey(m.Labels, key) }

// AllowsAnnotation reports whether a tenant annotation key reaches host
// objects as it is.
func (m MetadataAllowlist) AllowsAnnotation(key string) bool { return allowsKey(m.Annotations, key) }

// allowsKey matches a key against exact entries and "prefix/*" entries. The
// knest.io domain never matches: those keys are knest's marks of ownership.
func allowsKey(list []string, key string) bool {
	if isKnestKey(key) {
		return false
	}
	for _, e := range list {
		if e == key {
			return true
		}
		if prefix, ok := strings.CutSuffix(e, "/*"); ok && strings.HasPrefix(key, prefix+"/") {
			return true
		}
	}
	return false
}

// isKnestKey reports a key in the knest.io domain or a subdomain of it;
// API validation lower-cases prefixes, so case cannot dodge it.
func isKnestKey(key string) bool {
	prefix, _, found := strings.Cut(key, "/")
	if !found {
		return false
	}
	prefix = strings.ToLower(prefix)
	return prefix == "knest.io" || strings.HasSuffix(prefix, ".knest.io")
}

func (m MetadataAllowlist) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, l := range []struct {
		name string
		keys []string
	}{{"labels", m.Labels}, {"annotations", m.Annotations}} {
		for i, k := range l.keys {
			at := path.Child(l.name).Index(i)
			key := k
			if prefix, ok := strings.CutSuffix(k, "/*"); ok {
				key = prefix + "/x"
			}
			if isKnestKey(key) {
				errs = append(errs, field.Invalid(at, k, "the knest.io domain is knest's own: its keys mark ownership on the host"))
				continue
			}
			errs = append(errs, validateLabelKey(key, at)...)
		}
	}
	return errs
}

func (s Storage) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range s.Classes {
		errs = append(errs, validateName(c, path.Child("classes").Index(i))...)
	}
	if s.Default != "" {
		errs = append(errs, validateName(s.Default, path.Child("default"))...)
		if !slices.Contains(s.Classes, s.Default) {
			errs = append(errs, field.Invalid(path.Child("default"), s.Default, "must be one of classes"))
		}
	}
	for i, c := range s.VolumeAttributesClasses {
		errs = append(errs, validateName(c, path.Child("volumeAttributesClasses").Index(i))...)
	}
	return errs
}

// HostStorageClass returns the host StorageClass of a tenant claim that
// names class (nil: none named), or why the claim must not reach the host.
func (p *Policy) HostStorageClass(class *string) (*string, error) {
	s := p.Storage
	switch {
	case class == nil && s.Default != "":
		return ptr.To(s.Default), nil
	case class == nil:
		// The host's default class, whatever it is: admission on the host
		// fills it in.
		return nil, nil
	case *class == "":
		if s.PreProvisioned {
			return ptr.To(""), nil
		}
		return nil, fmt.Errorf(`storageClassName "" binds pre-provisioned host volumes, which %s does not allow; name a storage class (%s) or leave it unset`,
			p.Describe(), listOrNone(s.Classes))
	case slices.Contains(s.Classes, *class):
		return ptr.To(*class), nil
	}
	return nil, fmt.Errorf("storage class %q is not allowed in %s; use one of %s, or leave storageClassName unset",
		*class, p.Describe(), listOrNone(s.Classes))
}

// CheckClaim reports what in a tenant PersistentVolumeClaim spec (or an
// ephemeral volume's claim template, under path) would reach host storage
// the policy does not allow: the storage class, a volume attributes class,
// a volume name (binding a host volume by name), a selector, or a data
// source (another claim or snapshot, resolved on the host).
func CheckClaim(spec *corev1.PersistentVolumeClaimSpec, path *field.Path, p *Policy) field.ErrorList {
	var errs field.ErrorList
	if _, err := p.HostStorageClass(spec.StorageClassName); err != nil {
		errs = append(errs, field.Invalid(path.Child("storageClassName"), ptr.Deref(spec.StorageClassName, ""), err.Error()))
	}
	if c := spec.VolumeAttributesClassName; c != nil && *c != "" && !slices.Contains(p.Storage.VolumeAttributesClasses, *c) {
		errs = append(errs, field.Invalid(path.Child("volumeAttributesClassName"), *c, fmt.Sprintf(
			"volume attributes class is not allowed in %s; use one of %s, or leave it unset", p.Describe(), listOrNone(p.Storage.VolumeAttributesClasses))))
	}
	if spec.VolumeName != "" {
		errs = append(errs, field.Forbidden(path.Child("volumeName"), "claims cannot name a host volume; leave volumeName unset and let the claim be provisioned"))
	}
	if spec.Selector != nil {
		errs = append(errs, field.Forbidden(path.Child("selector"), "claims cannot select host volumes; remove the selector"))
	}
	if spec.DataSource != nil || spec.DataSourceRef != nil {
		errs = append(errs, field.Forbidden(path.Child("dataSourceRef"), "claims cannot be populated from other claims or snapshots in this tenant yet; remove the data source"))
	}
	return errs
}

// listOrNone quotes a list for messages, or says it is empty.
func listOrNone(list []string) string {
	if len(list) == 0 {
		return "the policy allows none"
	}
	return quoteList(list)
}
