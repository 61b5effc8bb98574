// Package events translates host Events about synced objects into Events on
// the matching tenant objects (host -> tenant only).
//
// Backward: type, reason, message, count, and first and last timestamps of
// a host Event about a host copy become an Event in the
// tenant namespace, regarding the tenant object the copy stands for. The
// tenant Event's name is derived from the host Event's UID, so the same host
// Event always updates the same tenant Event. The reporting component and
// host are not copied (the host is a host node's name); the source reads
// "knest-host". Host Events about objects that are not ours never flow.
package events

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/knest-dev/knest/pkg/translate"
)

// SourceComponent marks tenant Events copied from the host.
const SourceComponent = "knest-host"

// TenantEventName is the name of the tenant copy of a host Event.
func TenantEventName(regardingName string, hostEvent *corev1.Event) string {
	sum := sha256.Sum256([]byte(hostEvent.UID))
	name := regardingName
	if len(name) > 200 {
		name = name[:200]
	}
	return name + ".knest-" + hex.EncodeToString(sum[:])[:16]
}

// Backward returns the desired tenant Event for host Event ev about the host
// copy of tenant object obj (whose kind's API version is apiVersion). existing
// is the current tenant copy or nil; it is not modified. scrub rewrites the
// message's host names (host object and node names) to tenant ones.
func Backward(ev *corev1.Event, obj translate.Object, apiVersion string, existing *corev1.Event, scrub *strings.Replacer) *corev1.Event {
	out := &corev1.Event{}
	if existing != nil {
		out = existing.DeepCopy()
	}
	out.Name = TenantEventName(obj.Name, ev)
	out.Namespace = obj.Namespace
	out.InvolvedObject = corev1.ObjectReference{
		Kind: obj.Kind, APIVersion: apiVersion, Namespace: obj.Namespace, Name: obj.Name, UID: obj.UID,
	}
	out.Type = ev.Type
	out.Reason = ev.Reason
	out.Message = scrub.Replace(ev.Message)
	out.Count = ev.Count
	out.FirstTimestamp = ev.FirstTimestamp
	out.LastTimestamp = ev.LastTimestamp
	if out.FirstTimestamp.IsZero() {
		out.FirstTimestamp = metav1.NewTime(ev.EventTime.Time)
	}
	if out.LastTimestamp.IsZero() {
		out.LastTimestamp = out.FirstTimestamp
	}
	out.Source = corev1.EventSource{Component: SourceComponent}
	return out
}
