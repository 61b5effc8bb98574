// Package podorder holds a test of the whole syncer's pod queue under a
// host budget (see its test file); it has no code of its own. The test
// runs in a process of its own: a syncer's controller names are unique
// per process, and package syncer's TestSyncer runs one.
package podorder
