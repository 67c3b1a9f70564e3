package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
)

// The event types, as they appear in a body's "type" and in the
// notify.webhooks[].events setting.
const (
	ConsentRequired   = "tenant.consent_required"
	ConsentNeededSoon = "tenant.consent_needed_soon"
	Connected         = "tenant.connected"
	Disconnected      = "tenant.disconnected"
	RefreshFailing    = "tenant.refresh_failing"
)

// EventTypes lists every event type, in the order the documentation gives.
var EventTypes = []string{ConsentRequired, ConsentNeededSoon, Connected, Disconnected, RefreshFailing}

// KnownType reports whether typ is one of EventTypes.
func KnownType(typ string) bool {
	for _, t := range EventTypes {
		if t == typ {
			return true
		}
	}
	return false
}

// needsAttention reports whether an event of typ asks a person to act; only
// those are announced for a tenant the fleet has never announced before.
func needsAttention(typ string) bool {
	return typ == ConsentRequired || typ == ConsentNeededSoon || typ == RefreshFailing
}

// implies reports whether announcing an event of type told already tells
// the receiver what an event of type typ would: a disconnected tenant needs
// consent, so tenant.consent_required after tenant.disconnected is no news.
func implies(told, typ string) bool {
	return told == typ || (told == Disconnected && typ == ConsentRequired)
}

// Event is one thing that happened to a tenant.
type Event struct {
	// Type is one of EventTypes.
	Type string
	// Time is when sidekey saw it happen.
	Time time.Time
	// Data describes the tenant. It must hold no token or secret.
	Data Data
}

// Data is an event body's "data": the tenant, what it is and what it
// needs. Only names, states, times, a URL and secret-free error text.
type Data struct {
	Tenant        string     `json:"tenant"`
	Provider      string     `json:"provider,omitempty"`
	State         string     `json:"state"`                    // the tenant state: connected, consent_required, … or disconnected
	ConnectURL    string     `json:"connect_url,omitempty"`    // where a person (re)connects it
	Expiry        *time.Time `json:"expiry,omitempty"`         // the access token's expiry
	RefreshExpiry *time.Time `json:"refresh_expiry,omitempty"` // when a new consent is due
	LastError     string     `json:"last_error,omitempty"`     // the token engine's last error
}

// body is the JSON a webhook receives.
type body struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      Data      `json:"data"`
}

// marshal encodes e as a webhook body.
func (e *Event) marshal() ([]byte, error) {
	return json.Marshal(body{Type: e.Type, Timestamp: e.Time.UTC(), Data: e.Data})
}

// eventID derives the webhook-id of the seq'th announcement for tenant:
// every replica derives the same id for the same announcement.
func eventID(tenant, typ string, seq uint64) string {
	sum := sha256.Sum256([]byte(tenant + "\x00" + typ + "\x00" + strconv.FormatUint(seq, 10)))
	return "msg_" + hex.EncodeToString(sum[:12])
}
