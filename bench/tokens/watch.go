package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// watcher polls sidekey's /_sidekey/status while a variant is measured, to
// see from outside whether any tenant was ever without a valid token, and
// how close each new token came to the old one's expiry.
type watcher struct {
	mu        sync.Mutex // guards the fields below
	polls     int
	invalid   int           // tenant observations with valid=false
	renewals  int           // new tokens seen (expiry moved)
	minMargin time.Duration // smallest (old expiry − when the new token was seen)
	last      map[string]time.Time
}

type statusPage struct {
	Tenants map[string]struct {
		Valid  bool       `json:"valid"`
		Expiry *time.Time `json:"expiry"`
	} `json:"tenants"`
}

// watch polls url every interval until ctx is done.
func (w *watcher) watch(ctx context.Context, url string, interval time.Duration) {
	client := &http.Client{Timeout: time.Second}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		var page statusPage
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			continue
		}
		w.observe(page, time.Now())
	}
}

func (w *watcher) observe(page statusPage, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		w.last = map[string]time.Time{}
		w.minMargin = time.Hour
	}
	w.polls++
	for name, t := range page.Tenants {
		if !t.Valid {
			w.invalid++
		}
		if t.Expiry == nil {
			continue
		}
		prev, seen := w.last[name]
		if seen && t.Expiry.After(prev) {
			w.renewals++
			w.minMargin = min(w.minMargin, prev.Sub(now))
		}
		w.last[name] = *t.Expiry
	}
}

// summary returns the counts so far.
func (w *watcher) summary() (polls, invalid, renewals int, minMargin time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.polls, w.invalid, w.renewals, w.minMargin
}
