package notify

import (
	"sync"
	"testing"
	"time"
)

// TestCoalescerKeepsADisconnectOverTheConsentItImplies: a disconnect held
// in a window is not replaced by the tenant.consent_required that follows
// from it; the receiver is told of the disconnect, once.
func TestCoalescerKeepsADisconnectOverTheConsentItImplies(t *testing.T) {
	var mu sync.Mutex
	var got []string
	emitted := make(chan struct{}, 4)
	c := newCoalescer(50*time.Millisecond, time.Now, func(e *Event) {
		mu.Lock()
		got = append(got, e.Type)
		mu.Unlock()
		emitted <- struct{}{}
	})
	defer c.stop()
	for _, typ := range []string{Connected, Disconnected, ConsentRequired} {
		c.offer(&Event{Type: typ, Data: Data{Tenant: "shop"}})
	}
	for range 2 {
		select {
		case <-emitted:
		case <-time.After(10 * time.Second):
			t.Fatalf("events emitted: %v; want 2", got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != Connected || got[1] != Disconnected {
		t.Errorf("emitted %v; want [%s %s]", got, Connected, Disconnected)
	}
}
