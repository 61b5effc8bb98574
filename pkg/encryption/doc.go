// Package encryption keeps the key that encrypts a tenant's Secrets at rest and
// renders the kube-apiserver EncryptionConfiguration that uses it.
//
// The key is 32 random bytes, stored base64-encoded on one line. It is
// generated into the data directory on first start (mode 0600) unless the
// operator gives a key file, which is how the Helm chart keeps it off the data
// volume: it mounts the key from a host Secret. A key file that exists but
// does not hold a valid key is an error, never replaced, because replacing it
// would make every stored Secret unreadable.
package encryption
