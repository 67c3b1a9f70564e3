package store

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestRedisWatchAcrossReplicas(t *testing.T) {
	srv := startRedis(t)
	cfg := srv.storage(t, 1)
	a, b := openSealedRedisT(t, cfg), openSealedRedisT(t, cfg)
	changes := watchOf(t, b, "tokens/")

	mustStore(t, a, "tokens/acme", "rt-1")
	if got := nextChange(t, changes); got != "tokens/acme" {
		t.Errorf("change seen by the other replica: got %q; want %q", got, "tokens/acme")
	}
	if ok, err := a.CompareAndSwap(ctxT(t), "tokens/acme", []byte("rt-1"), []byte("rt-2")); !ok || err != nil {
		t.Fatalf("CompareAndSwap: %v, %v", ok, err)
	}
	if got := nextChange(t, changes); got != "tokens/acme" {
		t.Errorf("change after CompareAndSwap: got %q; want %q", got, "tokens/acme")
	}
	if got := mustLoad(t, b, "tokens/acme"); got != "rt-2" {
		t.Errorf("the other replica reads %q; want %q", got, "rt-2")
	}

	// Anyone may publish on the channel: only well-formed names under the
	// prefix get through.
	raw := rawRedis(t, srv)
	for _, name := range []string{"tokens/../x", "tokens/a\nb", "other/x", "tokens/ok"} {
		if err := raw.Publish(ctxT(t), "sidekey:changes", name).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got := nextChange(t, changes); got != "tokens/ok" {
		t.Errorf("after published junk: got %q; want %q", got, "tokens/ok")
	}
}

func TestRedisWatchSurvivesRestart(t *testing.T) {
	srv := startRedis(t)
	core, logs := observer.New(zap.InfoLevel)
	a := openRedisT(t, srv.options())
	b := openRedisT(t, RedisOptions{Addr: srv.addr, Logger: zap.New(core)})
	changes := watchOf(t, b, "tokens/")
	mustStore(t, a, "tokens/before", "v")
	if got := nextChange(t, changes); got != "tokens/before" {
		t.Fatalf("change before the restart: got %q; want %q", got, "tokens/before")
	}

	srv.kill()
	srv.restart()
	waitPing(t, a)

	// Write until b's watch reports a write made after the restart: it
	// resubscribes by itself, after a back-off.
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the watch reported nothing written after the restart within 15 s")
		}
		mustStore(t, a, fmt.Sprintf("tokens/after-%d", i), "v")
		if name := nextWithin(changes, 50*time.Millisecond); strings.HasPrefix(name, "tokens/after-") {
			break
		}
	}
	// Now subscribed again, a new write arrives as it happens.
	mustStore(t, a, "tokens/live", "v")
	for {
		name := nextChange(t, changes)
		if name == "tokens/live" {
			break
		}
		if !strings.HasPrefix(name, "tokens/after-") && name != "tokens/before" { // also reported once after resubscribing
			t.Fatalf("unexpected change %q", name)
		}
	}
	for _, msg := range []string{"interrupted", "resumed"} {
		if logs.FilterMessageSnippet(msg).Len() != 1 {
			t.Errorf("log lines about the watch: %v; want one saying %q", logs.All(), msg)
		}
	}
}

// nextWithin returns the next name from ch, or "" when none comes within d
// or ch is closed.
func nextWithin(ch <-chan string, d time.Duration) string {
	select {
	case name := <-ch:
		return name
	case <-time.After(d):
		return ""
	}
}
