package pki

import "strings"

// InternalUser is the user name of knestd's own clients.
const InternalUser = "system:knest:knestd"

// ReservedPrefix starts every user and group name knestd keeps for its own
// identities. A tenant can neither impersonate such a name nor authenticate
// as it with a certificate of the tenant's CSR signer.
const ReservedPrefix = "system:knest:"

// APIServerUser is the user of the API server's loopback client
// (k8s.io/apiserver's user.APIServerUser, repeated here so that packages
// which only check names need not import the API server).
const APIServerUser = "system:apiserver"

// ReservedUser reports whether a user name belongs to knestd or to the API
// server itself. Tenant admission exempts these users, so nobody else may
// ever act as them.
func ReservedUser(name string) bool {
	return name == APIServerUser || strings.HasPrefix(name, ReservedPrefix)
}

// ReservedGroup reports whether a group name is knestd's. None of knestd's
// clients uses such a group today; the prefix is kept so that one can
// without first taking it back from tenants.
func ReservedGroup(name string) bool {
	return strings.HasPrefix(name, ReservedPrefix)
}
