package tokensource

import (
	"context"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// newHitSource returns a Source holding a valid one-hour token.
func newHitSource(tb testing.TB) *Source {
	s := RefreshAhead(&fakeIdP{life: time.Hour}, Options{Name: "bench"})
	tb.Cleanup(s.Close)
	mustToken(tb, s)
	return s
}

// newReuseSource returns oauth2.ReuseTokenSource holding a valid token.
func newReuseSource(tb testing.TB) oauth2.TokenSource {
	s := oauth2.ReuseTokenSource(nil, &fakeIdP{life: time.Hour})
	if _, err := s.Token(); err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestTokenHitDoesNotAllocate(t *testing.T) {
	s := newHitSource(t)
	ctx := context.Background()
	if allocs := testing.AllocsPerRun(1000, func() { _, _ = s.TokenContext(ctx) }); allocs != 0 {
		t.Errorf("TokenContext with a valid token: %v allocs; want 0", allocs)
	}
}

func BenchmarkTokenHit(b *testing.B) {
	s := newHitSource(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.TokenContext(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTokenHitParallel(b *testing.B) {
	s := newHitSource(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.TokenContext(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkReuseTokenSourceHit(b *testing.B) {
	s := newReuseSource(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Token(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReuseTokenSourceHitParallel(b *testing.B) {
	s := newReuseSource(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Token(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
