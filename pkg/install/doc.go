// Package install installs, upgrades and uninstalls the knest chart
// (charts.Knest, embedded in the binary) with the Helm SDK, against a host
// cluster given as a *rest.Config rather than a kubeconfig file: knest
// talks to hosts it reaches by any means (a kubeconfig context, a dev
// environment, a test). Releases are stored as Helm stores them (Secrets in
// the release namespace), so the helm CLI sees and manages them too.
//
// Chart values are checked against the chart's schema before anything is
// sent to the host, and a failure says which value is wrong and why
// (*ValuesError).
package install
