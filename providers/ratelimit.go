package providers

import (
	"time"

	"github.com/sidekey/sidekey/config"
)

// documentedRPS is each platform's documented request rate limit.
var documentedRPS = map[string]float64{
	"istores":    2, // 2 requests/second; over it 429 + Retry-After
	"storehippo": 2, // 2 requests/second per store
}

// RateLimit returns tenant t's outbound rate limit: its rate_limit
// setting, or else the platform's documented limit (none when undocumented),
// with burst and max_wait defaults filled in.
func RateLimit(t *config.Tenant) config.RateLimit {
	var rl config.RateLimit
	if t.RateLimit != nil {
		rl = *t.RateLimit
	} else {
		rl.RPS = documentedRPS[t.Provider]
	}
	if rl.RPS > 0 && rl.Burst <= 0 {
		rl.Burst = max(1, int(rl.RPS+0.999))
	}
	if rl.MaxWait <= 0 {
		rl.MaxWait = config.Duration(10 * time.Second)
	}
	return rl
}
