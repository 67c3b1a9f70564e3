package server

import (
	"fmt"
	"math"
	"time"
)

// timelineHorizon is the right end of the console's token timeline.
const timelineHorizon = 90 * 24 * time.Hour

// timeline places a tenant's access-token and refresh-token expiry on a
// logarithmic axis from now (0) to timelineHorizon (100), so a one-hour
// token and a 90-day refresh token both read at a glance. Positions are
// SVG coordinates: the page's CSP forbids inline styles.
type timeline struct {
	Label                     string
	HasExpiry, HasRefresh     bool
	Expiry, Refresh           float64
	ExpiryTitle, RefreshTitle string
	Ticks                     []timelineTick
}

// timelineTick is a labelled mark on the axis.
type timelineTick struct {
	X     float64
	Label string
}

// timelineTicks are the marks drawn on every timeline.
var timelineTicks = []struct {
	d     time.Duration
	label string
}{{time.Hour, "1 hour"}, {24 * time.Hour, "1 day"}, {7 * 24 * time.Hour, "7 days"}, {30 * 24 * time.Hour, "30 days"}}

// timelineX maps a duration from now to 0–100.
func timelineX(d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	x := 100 * math.Log1p(d.Minutes()) / math.Log1p(timelineHorizon.Minutes())
	return math.Round(min(x, 100)*10) / 10
}

func newTimeline(now time.Time, expiry, refresh *time.Time) timeline {
	t := timeline{Label: "no token"}
	for _, tk := range timelineTicks {
		t.Ticks = append(t.Ticks, timelineTick{X: timelineX(tk.d), Label: tk.label})
	}
	if expiry != nil {
		t.HasExpiry, t.Expiry = true, timelineX(expiry.Sub(now))
		t.ExpiryTitle = "access token until " + expiry.UTC().Format(time.RFC3339)
		t.Label = t.ExpiryTitle
	}
	if refresh != nil {
		t.HasRefresh, t.Refresh = true, timelineX(refresh.Sub(now))
		t.RefreshTitle = "refresh token until " + refresh.UTC().Format(time.RFC3339)
		t.Label += "; " + t.RefreshTitle
	}
	return t
}

// relativeTime shows t relative to now ("in 3h12m", "2d ago") and as an
// absolute time; "—" and "" when t is nil.
func relativeTime(t *time.Time, now time.Time) (rel, abs string) {
	if t == nil {
		return "—", ""
	}
	d := t.Sub(now)
	abs = t.UTC().Format(time.RFC3339)
	if d < 0 {
		return humanDuration(-d) + " ago", abs
	}
	return "in " + humanDuration(d), abs
}

// humanDuration is d in its two largest units: "3d4h", "52m", "40s".
func humanDuration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}
