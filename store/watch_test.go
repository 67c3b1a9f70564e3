package store

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"
)

// watchOf starts a Watch on s under prefix, ended at cleanup.
func watchOf(t *testing.T, s Store, prefix string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := s.(Watcher).Watch(ctx, prefix)
	if err != nil {
		t.Fatalf("Watch(%q): %v", prefix, err)
	}
	return ch
}

// nextChange returns the next name from ch, failing the test after 10 s.
func nextChange(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case name, ok := <-ch:
		if !ok {
			t.Fatal("the watch channel closed early")
		}
		return name
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported within 10 s")
		return ""
	}
}

// waitClosed fails the test unless ch is closed within 10 s; names still
// queued are skipped.
func waitClosed(t *testing.T, ch <-chan string, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("the watch channel stayed open after %s", what)
		}
	}
}

func TestStoreWatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := ctxT(t)
		ch := watchOf(t, s, "tenants/")
		all := watchOf(t, s, "")

		mustStore(t, s, "tenants/a/token", "v1")
		mustStore(t, s, "other/x", "not watched")
		if err := s.Delete(ctx, "tenants/a/token"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "tenants/never"); err != nil { // nothing changes: no report
			t.Fatal(err)
		}
		mustStore(t, s, "tenants/b/state", "nonce")
		if _, err := s.Take(ctx, "tenants/b/state"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Take(ctx, "tenants/b/state"); !errors.Is(err, fs.ErrNotExist) { // nothing taken: no report
			t.Fatalf("second Take: got %v; want fs.ErrNotExist", err)
		}
		if ok, err := s.CompareAndSwap(ctx, "tenants/c/token", nil, []byte("v1")); !ok || err != nil {
			t.Fatalf("CompareAndSwap: got %v, %v", ok, err)
		}
		if ok, err := s.CompareAndSwap(ctx, "tenants/c/token", nil, []byte("v2")); ok || err != nil { // no swap: no report
			t.Fatalf("failed CompareAndSwap: got %v, %v", ok, err)
		}
		mustStore(t, s, "tenants/end", "v")

		want := []string{"tenants/a/token", "tenants/a/token", "tenants/b/state", "tenants/b/state", "tenants/c/token", "tenants/end"}
		var got []string
		for range want {
			got = append(got, nextChange(t, ch))
		}
		if !slices.Equal(got, want) {
			t.Errorf("changes under tenants/: got %q; want %q", got, want)
		}
		if first := nextChange(t, all); first != "tenants/a/token" {
			t.Errorf("first change under \"\": got %q; want %q", first, "tenants/a/token")
		}
		if second := nextChange(t, all); second != "other/x" {
			t.Errorf("second change under \"\": got %q; want %q", second, "other/x")
		}

		if _, err := s.(Watcher).Watch(ctx, "/bad"); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Watch(\"/bad\"): got %v; want ErrInvalidKey", err)
		}
	})
}

func TestStoreWatchEnds(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx, cancel := context.WithCancel(ctxT(t))
		byCtx, err := s.(Watcher).Watch(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		byClose := watchOf(t, s, "")
		cancel()
		waitClosed(t, byCtx, "its context was cancelled")
		mustStore(t, s, "k", "v") // the remaining watch still works
		if got := nextChange(t, byClose); got != "k" {
			t.Errorf("change: got %q; want %q", got, "k")
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, byClose, "Close")
	})
}

func TestStoreWatchSlowReceiverDropsNotBlocks(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ch := watchOf(t, s, "")
		done := make(chan error, 1)
		go func() { // nobody reads ch meanwhile
			for i := range 3 * watchBuffer {
				if err := s.Store(context.Background(), "tenants/t"+string(rune('a'+i%26))+"/token", []byte("v")); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("writes blocked behind a watcher that does not read")
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(ch) < cap(ch) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // polling the channel's fill level, with a deadline
		}
		if len(ch) != cap(ch) || cap(ch) != watchBuffer {
			t.Errorf("the unread watch channel holds %d of %d; want it full at %d", len(ch), cap(ch), watchBuffer)
		}
	})
}
