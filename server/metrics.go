package server

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics holds sidekey's Prometheus metrics on a registry of its own (never
// the global one). Labels carry tenant names and status codes only, never a
// credential.
type metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec
	duration      prometheus.Histogram // all tenants: per-tenant histograms cost ~2 KiB a tenant
	waits         *prometheus.CounterVec
	waitSeconds   *prometheus.CounterVec
	loads         prometheus.Counter
	sweeps        prometheus.Counter
	evictions     prometheus.Counter
	fetches       *prometheus.CounterVec
	fetchDuration prometheus.Histogram

	perTenant sync.Map // tenant name → *tenantMetrics, so the hot path skips label hashing
}

// tenantMetrics caches one tenant's resolved children.
type tenantMetrics struct {
	requests atomic.Uint64                 // for /_sidekey/status
	waits    atomic.Uint64                 // requests that queued for the rate limit
	codes    atomic.Pointer[[]codeCounter] // copy-on-write; a handful of codes per tenant
	mu       sync.Mutex                    // serialises writers of codes
}

type codeCounter struct {
	code int
	c    prometheus.Counter
}

func newMetrics(status func() map[string]tenantStatus) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekey_requests_total",
			Help: "Proxied requests by tenant and the status code the caller got.",
		}, []string{"tenant", "code"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sidekey_request_duration_seconds",
			Help:    "Time from request to the end of the response, all tenants (per tenant: sidekey_requests_total).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekey_rate_limit_waits_total",
			Help: "Requests that queued for their tenant's rate limit (or an upstream 429 pause).",
		}, []string{"tenant"}),
		waitSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekey_rate_limit_wait_seconds_total",
			Help: "Time requests spent queued for their tenant's rate limit.",
		}, []string{"tenant"}),
		loads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidekey_engine_loads_total",
			Help: "Connections loaded from the store into memory (first use, or use after eviction).",
		}),
		sweeps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidekey_idle_renewals_total",
			Help: "Idle connections whose token the background sweep renewed (engine.idle_refresh).",
		}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidekey_engine_evictions_total",
			Help: "Connection engines evicted from memory by the engine.max_active bound.",
		}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekey_token_fetches_total",
			Help: "Token requests to the provider, by tenant and result (ok or error).",
		}, []string{"tenant", "result"}),
		fetchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sidekey_token_fetch_duration_seconds",
			Help:    "Duration of token requests to the providers, all tenants.",
			Buckets: prometheus.DefBuckets,
		}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.waits, m.waitSeconds, m.loads, m.sweeps, m.evictions, m.fetches, m.fetchDuration,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&tokenCollector{status: status},
	)
	return m
}

// ObserveRequest implements proxy.Observer.
func (m *metrics) ObserveRequest(tenant string, code int, d, waited time.Duration) {
	tm := m.tenant(tenant)
	tm.requests.Add(1)
	m.duration.Observe(d.Seconds())
	tm.counter(m, tenant, code).Inc()
	if waited > 0 {
		tm.waits.Add(1)
		m.waits.WithLabelValues(tenant).Inc()
		m.waitSeconds.WithLabelValues(tenant).Add(waited.Seconds())
	}
}

// FetchDone implements tokensource.Observer.
func (m *metrics) FetchDone(tenant string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.fetches.WithLabelValues(tenant, result).Inc()
	m.fetchDuration.Observe(d.Seconds())
}

func (m *metrics) tenant(name string) *tenantMetrics {
	if v, ok := m.perTenant.Load(name); ok {
		return v.(*tenantMetrics)
	}
	tm := &tenantMetrics{}
	tm.codes.Store(&[]codeCounter{})
	v, _ := m.perTenant.LoadOrStore(name, tm)
	return v.(*tenantMetrics)
}

func (tm *tenantMetrics) counter(m *metrics, tenant string, code int) prometheus.Counter {
	for _, cc := range *tm.codes.Load() {
		if cc.code == code {
			return cc.c
		}
	}
	tm.mu.Lock()
	defer tm.mu.Unlock()
	old := *tm.codes.Load()
	for _, cc := range old {
		if cc.code == code {
			return cc.c
		}
	}
	c := m.requests.WithLabelValues(tenant, strconv.Itoa(code))
	next := append(old[:len(old):len(old)], codeCounter{code: code, c: c})
	tm.codes.Store(&next)
	return c
}

// tokenCollector reports per-tenant token state at scrape time.
type tokenCollector struct {
	status func() map[string]tenantStatus
}

var (
	expiryDesc = prometheus.NewDesc("sidekey_token_expiry_seconds",
		"Seconds until the tenant's current token expires (absent for tokens without expiry).",
		[]string{"tenant"}, nil)
	refreshExpiryDesc = prometheus.NewDesc("sidekey_refresh_token_expiry_seconds",
		"Seconds until the tenant's refresh token expires and a person must connect it again (only when the platform states it).",
		[]string{"tenant"}, nil)
	consentDesc = prometheus.NewDesc("sidekey_tenant_consent_required",
		"1 when the tenant needs a person to connect it (again), else 0.",
		[]string{"tenant"}, nil)
	validDesc = prometheus.NewDesc("sidekey_token_valid",
		"1 when the tenant holds a valid token, else 0.",
		[]string{"tenant"}, nil)
)

// Describe implements prometheus.Collector.
func (c *tokenCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- expiryDesc
	ch <- refreshExpiryDesc
	ch <- validDesc
	ch <- consentDesc
}

// Collect implements prometheus.Collector.
func (c *tokenCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for name, st := range c.status() {
		valid := 0.0
		if st.Valid {
			valid = 1
		}
		ch <- prometheus.MustNewConstMetric(validDesc, prometheus.GaugeValue, valid, name)
		consent := 0.0
		if st.State == stateConsentRequired {
			consent = 1
		}
		ch <- prometheus.MustNewConstMetric(consentDesc, prometheus.GaugeValue, consent, name)
		if st.Expiry != nil {
			ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, st.Expiry.Sub(now).Seconds(), name)
		}
		if st.RefreshExpiry != nil {
			ch <- prometheus.MustNewConstMetric(refreshExpiryDesc, prometheus.GaugeValue, st.RefreshExpiry.Sub(now).Seconds(), name)
		}
	}
}

// engineGauges report how many token engines are in memory.
func (s *Server) engineGauges() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sidekey_engines_active",
			Help: "Token engines in memory: configured tenants plus loaded connections.",
		}, func() float64 { return float64(len(s.live.Load().tenants) + s.conns.loaded.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sidekey_engines_retiring",
			Help: "Evicted connection engines still serving their last requests (at most a quarter of engine.max_active, or 64).",
		}, func() float64 { return float64(s.conns.retiringCount()) }),
	}
}

// counts returns tenant's request and rate-limit wait counts so far.
func (m *metrics) counts(tenant string) (requests, waits uint64) {
	if v, ok := m.perTenant.Load(tenant); ok {
		tm := v.(*tenantMetrics)
		return tm.requests.Load(), tm.waits.Load()
	}
	return 0, 0
}

// forget drops tenant's series (an evicted connection), so that metric
// memory and cardinality follow the active tenants, not every connection
// ever used. Its counters start again from zero if it comes back, which
// Prometheus' rate() reads as a reset. It deletes the known label values
// one by one: a partial-match delete would scan every series, under the
// engine LRU's lock.
func (m *metrics) forget(tenant string) {
	v, ok := m.perTenant.LoadAndDelete(tenant)
	if ok {
		for _, cc := range *v.(*tenantMetrics).codes.Load() {
			m.requests.DeleteLabelValues(tenant, strconv.Itoa(cc.code))
		}
	}
	m.waits.DeleteLabelValues(tenant)
	m.waitSeconds.DeleteLabelValues(tenant)
	m.fetches.DeleteLabelValues(tenant, "ok")
	m.fetches.DeleteLabelValues(tenant, "error")
}
