package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// Claims is the part of a shared store (store.Store) replicas coordinate
// through. Load reports a missing key as an error matching fs.ErrNotExist;
// CompareAndSwap with old nil creates a key only if it is absent.
type Claims interface {
	Load(ctx context.Context, key string) ([]byte, error)
	CompareAndSwap(ctx context.Context, key string, old, new []byte) (swapped bool, err error)
}

// record is the fleet's last announcement for one tenant.
type record struct {
	Type  string    `json:"type"`  // the event type announced
	Seq   uint64    `json:"seq"`   // how many announcements so far
	ID    string    `json:"id"`    // its webhook-id
	Until time.Time `json:"until"` // the claim's lease: another replica may take over after it
	Done  bool      `json:"done"`  // delivered (or given up on) by its claimer
}

// claimKey is the store key of tenant's record.
func claimKey(tenant string) string { return "notify/tenants/" + tenant }

// claimAttempts bounds CompareAndSwap retries when replicas race.
const claimAttempts = 5

// outcome is what claim decided.
type outcome int

const (
	claimed     outcome = iota // this replica sends it
	duplicate                  // another replica sent or is sending it
	unannounced                // a calm state the fleet never announced anything about
)

// claim decides whether this replica announces e. It returns the webhook-id
// to send with, or, for duplicate, how long until the other claim's lease
// runs out (0: it is done). With takeover it only takes over an expired
// claim of e, never announces it anew. Without Claims every event is
// claimed.
func (n *Notifier) claim(ctx context.Context, e *Event, takeover bool) (id string, out outcome, wait time.Duration, err error) {
	if n.claims == nil {
		return eventID(e.Data.Tenant, e.Type, uint64(n.now().UnixNano())), claimed, 0, nil
	}
	key := claimKey(e.Data.Tenant)
	for range claimAttempts {
		old, err := n.claims.Load(ctx, key)
		var rec record
		switch {
		case errors.Is(err, fs.ErrNotExist):
			old = nil
		case err != nil:
			return "", 0, 0, fmt.Errorf("notify: reading %s: %w", key, err)
		default:
			if err := json.Unmarshal(old, &rec); err != nil {
				return "", 0, 0, fmt.Errorf("notify: reading %s: %w", key, err)
			}
		}
		now := n.now()
		next := rec
		switch {
		case old != nil && rec.Type == e.Type:
			if rec.Done {
				return "", duplicate, 0, nil
			}
			if now.Before(rec.Until) {
				return "", duplicate, rec.Until.Sub(now), nil
			}
			// Its claimer died or gave up before finishing: take it over,
			// with the same id.
		case takeover:
			return "", duplicate, 0, nil // the record moved on: not news any more
		case old != nil && implies(rec.Type, e.Type):
			return "", duplicate, 0, nil // e.g. consent required after a disconnect another replica announced
		case old == nil && !needsAttention(e.Type):
			return "", unannounced, 0, nil
		default:
			next = record{Type: e.Type, Seq: rec.Seq + 1}
			next.ID = eventID(e.Data.Tenant, e.Type, next.Seq)
		}
		next.Until = now.Add(n.lease)
		next.Done = false
		b, err := json.Marshal(next)
		if err != nil {
			return "", 0, 0, fmt.Errorf("notify: %w", err)
		}
		ok, err := n.claims.CompareAndSwap(ctx, key, old, b)
		if err != nil {
			return "", 0, 0, fmt.Errorf("notify: claiming %s: %w", key, err)
		}
		if ok {
			return next.ID, claimed, 0, nil
		}
	}
	return "", 0, 0, fmt.Errorf("notify: claiming %s: too many concurrent changes", claimKey(e.Data.Tenant))
}

// finish marks announcement id of tenant done, unless the record has moved
// on since.
func (n *Notifier) finish(ctx context.Context, tenant, id string) error {
	if n.claims == nil {
		return nil
	}
	key := claimKey(tenant)
	for range claimAttempts {
		old, err := n.claims.Load(ctx, key)
		if err != nil {
			return fmt.Errorf("notify: reading %s: %w", key, err)
		}
		var rec record
		if err := json.Unmarshal(old, &rec); err != nil {
			return fmt.Errorf("notify: reading %s: %w", key, err)
		}
		if rec.ID != id || rec.Done {
			return nil
		}
		rec.Done = true
		b, _ := json.Marshal(rec)
		if ok, err := n.claims.CompareAndSwap(ctx, key, old, b); err != nil || ok {
			return err
		}
	}
	return nil
}
