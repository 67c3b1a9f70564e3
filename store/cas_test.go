package store

import (
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"testing"
)

func TestStoreCompareAndSwap(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		mustStore(t, s, "k", "rt-1")
		mustStore(t, s, "empty", "")
		var casTests = []struct {
			name      string // what the step shows
			key       string // the key
			old, new  []byte // CompareAndSwap arguments
			swapped   bool   // the result
			wantValue string // the value afterwards; "<absent>" for none
		}{
			{"mismatch leaves the value", "k", []byte("rt-0"), []byte("rt-2"), false, "rt-1"},
			{"a prefix of the value is a mismatch", "k", []byte("rt-"), []byte("rt-2"), false, "rt-1"},
			{"nil old on a present key", "k", nil, []byte("rt-2"), false, "rt-1"},
			{"empty old on a non-empty value", "k", []byte{}, []byte("rt-2"), false, "rt-1"},
			{"match swaps", "k", []byte("rt-1"), []byte("rt-2"), true, "rt-2"},
			{"the old value no longer matches", "k", []byte("rt-1"), []byte("rt-3"), false, "rt-2"},
			{"old on an absent key", "absent", []byte("x"), []byte("y"), false, "<absent>"},
			{"empty old on an absent key", "absent", []byte{}, []byte("y"), false, "<absent>"},
			{"nil old creates an absent key", "created", nil, []byte("v1"), true, "v1"},
			{"empty old matches an empty value", "empty", []byte{}, []byte("now-set"), true, "now-set"},
			{"nil new stores an empty value", "k", []byte("rt-2"), nil, true, ""},
		}
		ctx := ctxT(t)
		for _, tt := range casTests {
			swapped, err := s.CompareAndSwap(ctx, tt.key, tt.old, tt.new)
			if err != nil || swapped != tt.swapped {
				t.Errorf("%s: CompareAndSwap(%q, %q, %q): got %v, %v; want %v, nil", tt.name, tt.key, tt.old, tt.new, swapped, err, tt.swapped)
			}
			got, err := s.Load(ctx, tt.key)
			switch {
			case tt.wantValue == "<absent>" && !errors.Is(err, fs.ErrNotExist):
				t.Errorf("%s: Load(%q): got %q, %v; want fs.ErrNotExist", tt.name, tt.key, got, err)
			case tt.wantValue != "<absent>" && (err != nil || string(got) != tt.wantValue):
				t.Errorf("%s: Load(%q): got %q, %v; want %q", tt.name, tt.key, got, err, tt.wantValue)
			}
		}

		// The store keeps its own copy of new.
		next := []byte("rt-9")
		if ok, err := s.CompareAndSwap(ctx, "k", []byte{}, next); !ok || err != nil {
			t.Fatalf("CompareAndSwap on the empty value: got %v, %v; want true, nil", ok, err)
		}
		next[0] = 'X'
		if got := mustLoad(t, s, "k"); got != "rt-9" {
			t.Errorf("Load after changing the swapped-in slice: got %q; want %q", got, "rt-9")
		}
	})
}

func TestStoreCompareAndSwapOneWinner(t *testing.T) {
	const swappers = 50
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := ctxT(t)
		for round, old := range [][]byte{nil, []byte("rt-0"), {}} {
			key := fmt.Sprintf("tenants/acme/token-%d", round)
			if old != nil {
				mustStore(t, s, key, string(old))
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			var mu sync.Mutex // guards winners, errs
			var winners []string
			var errs []error
			for i := range swappers {
				wg.Go(func() {
					<-start
					mine := fmt.Sprintf("rt-%d-%d", round, i)
					swapped, err := s.CompareAndSwap(ctx, key, old, []byte(mine))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
					}
					if swapped {
						winners = append(winners, mine)
					}
				})
			}
			close(start)
			wg.Wait()
			if len(winners) != 1 || len(errs) > 0 {
				t.Fatalf("round %d (old %q): %d concurrent swaps gave winners %q, errors %v; want exactly one winner",
					round, old, swappers, winners, errs)
			}
			if got := mustLoad(t, s, key); got != winners[0] {
				t.Errorf("round %d: value after the race: got %q; want the winner's %q", round, got, winners[0])
			}
		}
	})
}

func TestSealedCompareAndSwapWrongKey(t *testing.T) {
	inner := NewMemory()
	defer inner.Close()
	a, _ := Seal(inner, testKey(1))
	b, _ := Seal(inner, testKey(2))
	mustStore(t, a, "k", "v")
	if ok, err := b.CompareAndSwap(ctxT(t), "k", []byte("v"), []byte("w")); ok || !errors.Is(err, ErrWrongKey) {
		t.Errorf("CompareAndSwap with another key: got %v, %v; want false, ErrWrongKey", ok, err)
	}
	if got := mustLoad(t, a, "k"); got != "v" {
		t.Errorf("value after a refused swap: got %q; want %q", got, "v")
	}
	// The comparison is on plaintexts: the sealed bytes differ on every
	// write, the plaintext is what matches.
	mustStore(t, a, "k", "v")
	if ok, err := a.CompareAndSwap(ctxT(t), "k", []byte("v"), []byte("w")); !ok || err != nil {
		t.Errorf("CompareAndSwap after rewriting the same plaintext: got %v, %v; want true, nil", ok, err)
	}
}
