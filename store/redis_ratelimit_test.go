package store

import (
	"context"
	"testing"
	"time"
)

func TestSharedBucketAcrossStores(t *testing.T) {
	srv := startRedis(t)
	a := openSealedRedisT(t, srv.storage(t, 1))
	b := openRedisT(t, srv.options()) // unsealed: buckets are the same either way
	ctx := ctxT(t)
	ba, bb := SharedBucket(a, "acme"), SharedBucket(b, "acme")
	if ba == nil || bb == nil {
		t.Fatal("SharedBucket on a redis store: got nil; want a bucket")
	}

	// 2 per second in bursts of 2: two turns now, then one every 500 ms,
	// whichever store asks.
	const rps, burst, maxWait = 2, 2, 10 * time.Second
	var waits []time.Duration
	start := time.Now()
	for i := range 6 {
		bucket := []RateBucket{ba, bb}[i%2]
		w, ok, err := bucket.Reserve(ctx, rps, burst, maxWait)
		if err != nil || !ok {
			t.Fatalf("Reserve %d: got %v, %v, %v", i, w, ok, err)
		}
		waits = append(waits, w)
	}
	// Each turn is due 500 ms after the one before, counted from the first;
	// the time the calls took comes off the wait.
	took := time.Since(start)
	for i, w := range waits {
		due := time.Duration(max(0, i-1)) * 500 * time.Millisecond
		if w > due+10*time.Millisecond || w < due-took-10*time.Millisecond {
			t.Errorf("turn %d waits %v; want %v less at most %v (all waits %v)", i, w, due, took, waits)
		}
	}
	// A turn further away than maxWait is refused and takes nothing.
	w, ok, err := ba.Reserve(ctx, rps, burst, time.Second)
	if ok || err != nil || w < 2*time.Second {
		t.Errorf("Reserve beyond maxWait: got %v, %v, %v; want a refusal with a wait over 2s", w, ok, err)
	}
	if w2, ok, _ := bb.Reserve(ctx, rps, burst, maxWait); !ok || w2 > w+50*time.Millisecond {
		t.Errorf("the refused turn was taken: the next waits %v; want about %v", w2, w)
	}

	// Another name has its own bucket; a pause reaches every store.
	other := SharedBucket(b, "other")
	if w, ok, err := other.Reserve(ctx, rps, burst, maxWait); !ok || err != nil || w != 0 {
		t.Errorf("first turn of another name: got %v, %v, %v; want 0, true, nil", w, ok, err)
	}
	if err := SharedBucket(a, "other").Pause(ctx, 3*time.Second); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if w, ok, err := other.Reserve(ctx, rps, burst, maxWait); !ok || err != nil || w < 2*time.Second {
		t.Errorf("turn after a 3s pause set by another store: got %v, %v, %v; want a wait of about 3s", w, ok, err)
	}

	// Each store's heartbeat counts both.
	waitForRedis(t, "both stores' heartbeats", func(context.Context) bool { return ba.Sharers() == 2 && bb.Sharers() == 2 })
}

func TestSharedBucketOnlyForRedis(t *testing.T) {
	if b := SharedBucket(NewMemory(), "acme"); b != nil {
		t.Errorf("SharedBucket on a memory store: got %v; want nil (the process limits on its own)", b)
	}
}
