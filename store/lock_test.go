package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestStoreLockExcludes(t *testing.T) {
	const workers, rounds = 8, 50
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := ctxT(t)
		var (
			counter  int          // guarded by the store lock alone: -race catches a gap
			inside   atomic.Int32 // holders right now
			overlaps atomic.Int32 // times a holder found another one inside
		)
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Go(func() {
				for range rounds {
					unlock, err := s.Lock(ctx, "tenants/acme")
					if err != nil {
						errs <- err
						return
					}
					if inside.Add(1) != 1 {
						overlaps.Add(1)
					}
					counter++
					inside.Add(-1)
					unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if counter != workers*rounds || overlaps.Load() != 0 {
			t.Errorf("counter %d, %d overlapping holders; want %d, 0", counter, overlaps.Load(), workers*rounds)
		}
		if n := locksOf(t, s).size(); n != 0 {
			t.Errorf("%d lock entries left after every unlock; want 0", n)
		}
	})
}

func TestStoreLockNamesAreIndependent(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		unlockA, err := s.Lock(ctxT(t), "tenants/a")
		if err != nil {
			t.Fatal(err)
		}
		defer unlockA()
		ctx, cancel := context.WithTimeout(ctxT(t), 5*time.Second)
		defer cancel()
		unlockB, err := s.Lock(ctx, "tenants/b")
		if err != nil {
			t.Fatalf("Lock(tenants/b) while tenants/a is held: %v", err)
		}
		unlockB()
	})
}

func TestStoreLockHonoursContext(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		unlock, err := s.Lock(ctxT(t), "tenants/acme")
		if err != nil {
			t.Fatal(err)
		}

		// A waiter whose context is cancelled gives up.
		ctx, cancel := context.WithCancel(ctxT(t))
		done := make(chan error, 1)
		go func() {
			u, err := s.Lock(ctx, "tenants/acme")
			if u != nil {
				u()
			}
			done <- err
		}()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Lock with a cancelled context: got %v; want context.Canceled", err)
		}

		// A waiter whose deadline passes gives up.
		ctx, cancel = context.WithTimeout(ctxT(t), 20*time.Millisecond)
		defer cancel()
		if _, err := s.Lock(ctx, "tenants/acme"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Lock past its deadline: got %v; want context.DeadlineExceeded", err)
		}

		// A done context fails even for a free lock.
		done2, cancel2 := context.WithCancel(ctxT(t))
		cancel2()
		if _, err := s.Lock(done2, "tenants/free"); !errors.Is(err, context.Canceled) {
			t.Errorf("Lock of a free lock with a done context: got %v; want context.Canceled", err)
		}

		// The holder is unaffected and the lock is free after unlock.
		unlock()
		again, err := s.Lock(ctxT(t), "tenants/acme")
		if err != nil {
			t.Fatalf("Lock after unlock: %v", err)
		}
		again()
		if n := locksOf(t, s).size(); n != 0 {
			t.Errorf("%d lock entries left after cancelled waiters; want 0", n)
		}
	})
}

func TestStoreUnlockIsIdempotent(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		first, err := s.Lock(ctxT(t), "tenants/acme")
		if err != nil {
			t.Fatal(err)
		}
		first()
		second, err := s.Lock(ctxT(t), "tenants/acme")
		if err != nil {
			t.Fatal(err)
		}
		first() // a stale unlock must not release the second holder's lock

		ctx, cancel := context.WithTimeout(ctxT(t), 20*time.Millisecond)
		defer cancel()
		if u, err := s.Lock(ctx, "tenants/acme"); !errors.Is(err, context.DeadlineExceeded) {
			if u != nil {
				u()
			}
			t.Fatalf("Lock while the second holder holds it: got %v; want context.DeadlineExceeded", err)
		}
		second()
		second()
		if n := locksOf(t, s).size(); n != 0 {
			t.Errorf("%d lock entries left; want 0", n)
		}
	})
}

func TestStoreCloseWakesLockWaiters(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		if _, err := s.Lock(ctxT(t), "tenants/acme"); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := s.Lock(context.Background(), "tenants/acme")
			done <- err
		}()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Errorf("Lock waiting across Close: got %v; want ErrClosed", err)
		}
	})
}
