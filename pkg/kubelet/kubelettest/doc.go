// Package kubelettest holds the checks every kubelet.Backend passes behind
// a kubelet.Server: RunBackendChecks, which each backend's tests call with
// a way to build it.
package kubelettest
