package tokensource

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestNewStateTimes(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name          string
		life          time.Duration // token Expiry − fetch time; 0: no Expiry
		refreshBefore time.Duration // Options.RefreshBefore
		wantMargin    time.Duration // Expiry − effective expiry
		wantRefresh   time.Duration // refresh time − fetch time
	}{
		{"1h token", time.Hour, 0, 5 * time.Second, 30 * time.Minute},
		{"10s token", 10 * time.Second, 0, time.Second, 5 * time.Second},
		{"4s token", 4 * time.Second, 0, 400 * time.Millisecond, 2 * time.Second},
		{"50s token, margin at the cap", 50 * time.Second, 0, 5 * time.Second, 25 * time.Second},
		{"100ms token", 100 * time.Millisecond, 0, 10 * time.Millisecond, 50 * time.Millisecond},
		{"Istores 10000h token", 36000000 * time.Second, 0, 5 * time.Second, 18000000 * time.Second},
		{"refresh_before 10m", time.Hour, 10 * time.Minute, 5 * time.Second, 49*time.Minute + 55*time.Second},
		{"refresh_before 1s", time.Hour, time.Second, 5 * time.Second, time.Hour - 6*time.Second},
		{"refresh_before past the life", time.Hour, 2 * time.Hour, 5 * time.Second, 6 * time.Minute},
		{"refresh_before just under the life", time.Hour, 59 * time.Minute, 5 * time.Second, 6 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := &oauth2.Token{AccessToken: "x", Expiry: t0.Add(tt.life)}
			st := newState(tok, t0, time.Time{}, tt.refreshBefore)
			if got := tok.Expiry.Sub(st.expiry); got != tt.wantMargin {
				t.Errorf("margin = %v; want %v", got, tt.wantMargin)
			}
			if got := st.refreshAt.Sub(t0); got != tt.wantRefresh {
				t.Errorf("refresh after %v; want %v", got, tt.wantRefresh)
			}
			if !st.refreshAt.Before(st.expiry) {
				t.Errorf("refresh at %v is not before effective expiry %v", st.refreshAt, st.expiry)
			}
			if !st.valid(st.expiry.Add(-1)) || st.valid(st.expiry) {
				t.Errorf("valid() does not switch at the effective expiry")
			}
		})
	}
}

func TestNewStateUsesWallClock(t *testing.T) {
	now := time.Now() // with a monotonic reading, as oauth2 sets Expiry
	st := newState(&oauth2.Token{AccessToken: "x", Expiry: now.Add(time.Hour)}, now, now, 0)
	for name, tm := range map[string]time.Time{"expiry": st.expiry, "refreshAt": st.refreshAt, "fetchedAt": st.fetchedAt} {
		if strings.Contains(tm.String(), "m=") {
			t.Errorf("%s %v carries a monotonic reading; want wall clock only", name, tm)
		}
	}
}

func TestNewStatePermanent(t *testing.T) {
	st := newState(&oauth2.Token{AccessToken: "x"}, time.Now(), time.Time{}, time.Minute)
	if !st.expiry.IsZero() || !st.refreshAt.IsZero() {
		t.Fatalf("permanent token: expiry %v, refresh %v; want both zero", st.expiry, st.refreshAt)
	}
	far := time.Now().Add(100 * 365 * 24 * time.Hour)
	if !st.valid(far) || st.refreshDue(far) {
		t.Errorf("permanent token: valid = %v, refresh due = %v in 100 years; want true, false", st.valid(far), st.refreshDue(far))
	}
}

func TestBackoffBounds(t *testing.T) {
	const lo, hi = time.Second, 2 * time.Minute
	tests := []struct {
		n        int           // consecutive failures
		min, max time.Duration // range of the delay
	}{
		{1, 1 * time.Second, 2 * time.Second},
		{2, 2 * time.Second, 4 * time.Second},
		{3, 4 * time.Second, 8 * time.Second},
		{6, 32 * time.Second, 64 * time.Second},
		{7, 60 * time.Second, 120 * time.Second},
		{100, 60 * time.Second, 120 * time.Second},
		{1 << 30, 60 * time.Second, 120 * time.Second},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := backoff(tt.n, lo, hi)
			if d < tt.min || d > tt.max {
				t.Fatalf("backoff(%d) = %v; want in [%v, %v]", tt.n, d, tt.min, tt.max)
			}
			seen[d] = true
		}
		if len(seen) < 100 {
			t.Errorf("backoff(%d): %d distinct delays in 200; want jitter", tt.n, len(seen))
		}
	}
	if d := backoff(3, time.Second, time.Second); d != time.Second {
		t.Errorf("backoff with MinBackoff = MaxBackoff = 1s: %v; want 1s", d)
	}
}

// TestSlowFetchDoesNotDelayTheRefresh: a token's life counts from its
// request, so a slow token endpoint does not push the next refresh late.
// 6-second token, 2-second fetch: refresh 3 s after the request (1 s after
// the answer), well before the effective expiry at 5.4 s.
func TestSlowFetchDoesNotDelayTheRefresh(t *testing.T) {
	requested := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fetched := requested.Add(2 * time.Second)
	tok := &oauth2.Token{AccessToken: "x", Expiry: requested.Add(6 * time.Second)}
	st := newState(tok, fetched, requested, 0)
	if got, want := st.refreshAt, requested.Add(3*time.Second); !got.Equal(want) {
		t.Errorf("refresh at +%v; want +%v (half the life from the request)", got.Sub(requested), want.Sub(requested))
	}
	if got, want := st.expiry, requested.Add(6*time.Second-600*time.Millisecond); !got.Equal(want) {
		t.Errorf("effective expiry at +%v; want +%v", got.Sub(requested), want.Sub(requested))
	}
	// A refresh started then, as slow as this one, lands before expiry.
	if !st.refreshAt.Add(2 * time.Second).Before(st.expiry) {
		t.Error("a refresh as slow as the fetch would land after the token's effective expiry")
	}
}
