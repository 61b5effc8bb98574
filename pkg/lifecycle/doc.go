// Package lifecycle starts a component as a list of named steps, run in
// order by one Runner, and stops what the steps started in the reverse
// order, exactly once.
//
// A step's Start either fails, and then has left nothing behind, or returns
// a Running: how to stop what it started, and a channel on which a part
// that keeps running (a server, a controller) reports that it failed.
// Adding a part to a component is adding a step to its list; the order of
// the list is the order of start-up, and its reverse the order of shutdown.
//
// The Runner logs how long each step took (V(1)); start-up time is watched
// (knestd's cold start), and these lines say where it goes. A step's error
// is returned as the step wrote it, in a StepError that names the step:
// every step's error already says what failed, and is often shown to a user
// as one line.
package lifecycle
