package loadgen

import (
	"math"
	"slices"
	"time"
)

// Samples are latencies; Sort them before asking for quantiles.
type Samples []time.Duration

// Sort orders the samples, smallest first.
func (s Samples) Sort() { slices.Sort(s) }

// Quantile returns the q-quantile (0 ≤ q ≤ 1) of sorted samples by the
// nearest-rank method, or 0 when there are none.
func (s Samples) Quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(s)))) - 1
	i = max(0, min(i, len(s)-1))
	return s[i]
}

// Max returns the largest of sorted samples, or 0 when there are none.
func (s Samples) Max() time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

// Micros is d in microseconds, for reports.
func Micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
