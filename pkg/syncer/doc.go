// Package syncer keeps a tenant's objects and their host copies in step.
//
// One generic, level-based reconciler serves every synced kind; a Kind value
// (plain struct fields) tells it how to translate. For each tenant object key
// it looks at which side exists and acts on that, never on the event that
// woke it:
//
//   - tenant object wanted on the host, no host copy: create it;
//   - host copy that is ours, tenant object gone or no longer wanted:
//     delete it (with a UID precondition);
//   - both: compute the desired host object from the tenant object and the
//     current host copy, and patch only when it differs in a field the
//     syncer owns; a copy of an earlier tenant object (another UID), or one
//     that cannot change in place (an immutable Secret), is deleted and
//     created anew;
//   - a host object with the same name that is not ours (no marker, or
//     another identity) is never touched: the tenant gets a warning Event.
//
// The host side is watched through a cache limited to the tenant's host
// namespace and the tenant's marker label, so it sees nothing else; every
// host object maps back to its tenant key through its annotations, and the
// initial listing of both caches reconciles everything after a restart
// (copies of objects deleted while knestd was down go away, copies edited or
// deleted behind the syncer's back are restored).
//
// Failures that the tenant should see become Events on the tenant object;
// the operator sees logs and the knest_syncer_* Prometheus metrics.
//
// Pods, virtual Nodes and host Events have their own controllers
// (podsync, nodesync, eventsync); every controller writes through one
// writer.Writer, which holds the ownership check, the UID preconditions,
// the Events and the metrics. The translations are pure functions in
// resources/<kind>. This package keeps the engine and the wiring: adding a
// synced kind is one package under resources/ and one entry in Kinds.
package syncer
