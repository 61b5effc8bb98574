// Package datastore keeps a tenant's embedded etcd from filling up: a tenant
// whose datastore is full must never need a human.
//
// etcd refuses every write once its database file reaches its quota and
// raises the NOSPACE alarm, which stays until someone disarms it: the
// tenant's controllers can no longer renew their Leases, and even after the
// tenant deletes objects the file does not shrink until it is compacted and
// defragmented. knestd therefore acts before etcd does, and gives etcd a
// quota twice the tenant's limit (--etcd-quota-bytes, BackendQuotaPercent):
// a compaction briefly grows the file, which must not reach etcd's quota.
//
//   - A Monitor measures the database (etcd's maintenance Status: the file
//     size, which the quota is checked against, and the bytes in use) and
//     counts the objects of the kinds the policy caps, every few seconds.
//   - When the bytes in use reach ReadOnlyPercent of the limit the tenant
//     enters read-only mode
//     (Decide): the tenant API server's admission plugin
//     (pkg/admission/storagelimits) refuses creates and updates that grow an
//     object, while deletes, finalizer removal, namespaces/finalize, status
//     writes and Lease renewals still work, so the tenant can clean up and its
//     controllers keep running. Between measurements the Guard adds the size
//     of every write it admitted, so a fast writer cannot outrun the monitor.
//   - While the tenant is in the mode, the Monitor compacts etcd to its
//     current revision (freeing old revisions, deleted objects included);
//     when the bytes in use fall below WritablePercent the mode ends. It
//     defragments when that gives back a tenth of the limit. The mode is
//     kept in etcd (ModeKey), so a restart comes up in it. A NOSPACE alarm,
//     should it ever fire, is disarmed once the file is below etcd's quota
//     again.
//   - The mode is visible to the tenant as the DatastoreReadOnly condition of
//     the kube-system Namespace and as Events there, and to both tenant and
//     operator as knest_datastore_* metrics on the tenant API server's
//     /metrics.
package datastore
