package notify

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metrics are the notifier's Prometheus series.
type metrics struct {
	deliveries *prometheus.CounterVec // attempts by result
	events     *prometheus.CounterVec // events by what became of them
}

// The values of the result labels of sidekey_webhook_deliveries_total and
// sidekey_webhook_events_total.
var (
	deliveryResults = []string{"success", "retry", "failure"}
	eventResults    = []string{"sent", "duplicate", "ignored", "coalesced", "dropped"}
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekey_webhook_deliveries_total",
			Help: "Webhook delivery attempts by result: success (2xx), retry (failed, tried again later), failure (given up).",
		}, []string{"result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekey_webhook_events_total",
			Help: "Webhook events by outcome: sent (claimed by this replica), duplicate (announced by another replica), ignored (a calm state never announced before), coalesced (folded into a later event), dropped (queue full).",
		}, []string{"result"}),
	}
	for _, r := range deliveryResults {
		m.deliveries.WithLabelValues(r)
	}
	for _, r := range eventResults {
		m.events.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.deliveries, m.events)
	}
	return m
}

// count reads one series of vec.
func (m *metrics) count(vec *prometheus.CounterVec, label string) uint64 {
	var out dto.Metric
	if err := vec.WithLabelValues(label).Write(&out); err != nil {
		return 0
	}
	return uint64(out.GetCounter().GetValue())
}

// counts reads vec's series for each label value.
func (m *metrics) counts(vec *prometheus.CounterVec, labels []string) map[string]uint64 {
	out := make(map[string]uint64, len(labels))
	for _, l := range labels {
		out[l] = m.count(vec, l)
	}
	return out
}
