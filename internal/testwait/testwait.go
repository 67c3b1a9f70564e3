// Package testwait is the one polling helper sidekey's tests use to wait
// on a condition instead of sleeping for a guessed time.
package testwait

import (
	"testing"
	"time"
)

// Timeout is how long For waits before failing the test.
const Timeout = 10 * time.Second

// interval is the polling interval; inside a testing/synctest bubble it is
// fake time, so polling costs nothing there.
const interval = 10 * time.Millisecond

// For polls cond until it holds, failing t with "timed out waiting for
// <what>" after Timeout. cond runs on the caller's goroutine.
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Within(t, Timeout, what, cond)
}

// Within is For with another timeout than Timeout, for the few waits that
// legitimately take longer (a Redis failover).
func Within(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(interval) // polling interval, bounded by the deadline
	}
}
