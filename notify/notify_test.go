package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekey/sidekey/internal/testwait"
	"github.com/sidekey/sidekey/notify"
	"github.com/sidekey/sidekey/store"
)

// secret is the Standard Webhooks test vector's secret.
const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// TestSignMatchesPublishedVector checks Sign against the test vector every
// reference library shares (libraries/python/tests/test_webhooks.py in
// github.com/standard-webhooks/standard-webhooks).
func TestSignMatchesPublishedVector(t *testing.T) {
	key, err := notify.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	got := notify.Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestParseSecretRefusesWithoutShowingIt(t *testing.T) {
	for _, s := range []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not*base64!", "whsec_c2hvcnQ=", "whsec_" + strings.Repeat("QUFB", 30)} {
		_, err := notify.ParseSecret(s)
		if err == nil {
			t.Errorf("ParseSecret(%q) accepted", s)
			continue
		}
		if strings.Contains(err.Error(), strings.TrimPrefix(s, "whsec_")) {
			t.Errorf("error %q shows the secret", err)
		}
	}
}

func FuzzParseSecret(f *testing.F) {
	for _, s := range []string{secret, "whsec_", "whsec_====", "", "whsec_YWJj"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, err := notify.ParseSecret(s)
		if err == nil && (len(key) < 24 || len(key) > 64) {
			t.Errorf("accepted a %d-byte key", len(key))
		}
		if err != nil && len(s) > 12 && strings.Contains(err.Error(), s) {
			t.Errorf("error shows the input")
		}
	})
}

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
	status int       // what the receiver answered
	at     time.Time // when it arrived
}

// receiver is a webhook endpoint that verifies every request with verify
// and answers from a script of status codes (then 200).
type receiver struct {
	srv *httptest.Server

	mu      sync.Mutex // guards script, got, bad, header
	script  []int
	header  http.Header // added to each scripted answer
	got     []received
	badSigs int
}

func newReceiver(t *testing.T, script ...int) *receiver {
	t.Helper()
	r := &receiver{script: script, header: http.Header{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if verify(secret, req.Header, body, time.Now(), 5*time.Minute) != nil {
			r.badSigs++
		}
		status := http.StatusOK
		if len(r.script) > 0 {
			status, r.script = r.script[0], r.script[1:]
			for k, v := range r.header {
				w.Header()[k] = v
			}
		}
		r.got = append(r.got, received{header: req.Header.Clone(), body: body, status: status, at: time.Now()})
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// requests returns what the receiver got so far.
func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// accepted returns the requests the receiver answered 2xx, with tenant.
func (r *receiver) accepted(tenant string) []received {
	var out []received
	for _, g := range r.requests() {
		if g.status < 300 && tenantOf(g.body) == tenant {
			out = append(out, g)
		}
	}
	return out
}

func tenantOf(body []byte) string {
	var b struct {
		Data struct{ Tenant string } `json:"data"`
	}
	_ = json.Unmarshal(body, &b)
	return b.Data.Tenant
}

// fastOptions are Options for tests: tiny backoff, no coalescing.
func fastOptions(url string, reg prometheus.Registerer) notify.Options {
	key, _ := notify.ParseSecret(secret)
	return notify.Options{
		Endpoints:  []notify.Endpoint{{URL: url, Key: key}},
		Registerer: reg,
		Backoff:    time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Coalesce: -1,
	}
}

func start(t *testing.T, opts notify.Options) *notify.Notifier {
	t.Helper()
	n := notify.New(opts)
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return n
}

func event(tenant, typ string) notify.Event {
	return notify.Event{Type: typ, Data: notify.Data{Tenant: tenant, Provider: "scayle", State: "consent_required", ConnectURL: "http://127.0.0.1:8080/_sidekey/oauth/connect/" + tenant}}
}

func TestReceiverVerifiesSignatureAndBody(t *testing.T) {
	r := newReceiver(t)
	n := start(t, fastOptions(r.srv.URL+"/hook", nil))
	n.Publish(event("acme", notify.ConsentRequired))
	testwait.For(t, "the event", func() bool { return len(r.requests()) == 1 })
	got := r.requests()[0]
	if r.badSigs != 0 {
		t.Fatalf("the independent verifier refused the signature")
	}
	var body struct {
		Type      string         `json:"type"`
		Timestamp time.Time      `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
	if err := json.Unmarshal(got.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Type != notify.ConsentRequired || body.Timestamp.IsZero() || body.Data["tenant"] != "acme" ||
		body.Data["state"] != "consent_required" || !strings.HasSuffix(body.Data["connect_url"].(string), "/connect/acme") {
		t.Errorf("body: %s", got.body)
	}
	if !strings.HasPrefix(got.header.Get("webhook-id"), "msg_") {
		t.Errorf("webhook-id %q", got.header.Get("webhook-id"))
	}
	// A tampered body does not verify.
	if verify(secret, got.header, append(got.body, ' '), time.Now(), time.Minute) == nil {
		t.Error("the verifier accepted a tampered body")
	}
}

// TestFailingReceiverGetsTheEventOnceMore: 500, 500, then 200 — three
// attempts with one webhook-id, one accepted, and nothing after it.
func TestFailingReceiverGetsTheEventOnceMore(t *testing.T) {
	r := newReceiver(t, 500, 500)
	reg := prometheus.NewRegistry()
	n := start(t, fastOptions(r.srv.URL, reg))
	n.Publish(event("acme", notify.ConsentRequired))
	testwait.For(t, "the accepted delivery", func() bool { return len(r.accepted("acme")) == 1 })
	// A later event through the same queue: once it arrived, nothing of
	// acme's can still be on its way.
	n.Publish(event("sentinel", notify.ConsentRequired))
	testwait.For(t, "the sentinel", func() bool { return len(r.accepted("sentinel")) == 1 })

	var acme []received
	ids := map[string]bool{}
	for _, g := range r.requests() {
		if tenantOf(g.body) == "acme" {
			acme = append(acme, g)
			ids[g.header.Get("webhook-id")] = true
		}
	}
	if len(acme) != 3 || len(ids) != 1 {
		t.Errorf("acme: got %d attempts with %d ids; want 3 attempts with 1 id", len(acme), len(ids))
	}
	st := n.Status()
	if st.Deliveries["retry"] != 2 || st.Deliveries["success"] != 2 || st.Deliveries["failure"] != 0 {
		t.Errorf("deliveries: %v", st.Deliveries)
	}
	if got := counterValue(t, reg, "sidekey_webhook_deliveries_total", "retry"); got != 2 {
		t.Errorf("sidekey_webhook_deliveries_total{result=retry} = %v; want 2", got)
	}
	if !strings.Contains(st.LastError, "500") {
		t.Errorf("last error %q", st.LastError)
	}
}

func TestTooManyRequestsHonoursRetryAfter(t *testing.T) {
	r := newReceiver(t, http.StatusTooManyRequests)
	r.header.Set("Retry-After", "1")
	n := start(t, fastOptions(r.srv.URL, nil))
	n.Publish(event("acme", notify.ConsentRequired))
	testwait.For(t, "the accepted delivery", func() bool { return len(r.accepted("acme")) == 1 })
	got := r.requests()
	// The backoff alone is milliseconds: a second between the attempts is
	// the receiver's Retry-After.
	if gap := got[1].at.Sub(got[0].at); gap < 900*time.Millisecond {
		t.Errorf("the retry came %v after the 429; want Retry-After's 1s", gap)
	}
}

func TestRedirectIsNotFollowedAndClientErrorsAreFinal(t *testing.T) {
	elsewhere := newReceiver(t)
	r := newReceiver(t)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, elsewhere.srv.URL, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	reg := prometheus.NewRegistry()
	n := start(t, fastOptions(redirect.URL+"/hook?token=receiver-query-secret", reg))
	n.Publish(event("acme", notify.ConsentRequired))
	testwait.For(t, "the failure", func() bool { return n.Status().Deliveries["failure"] == 1 })
	if len(elsewhere.requests()) != 0 {
		t.Error("the redirect was followed")
	}
	st := n.Status()
	if st.Deliveries["retry"] != 0 {
		t.Errorf("a redirect was retried: %v", st.Deliveries)
	}
	if strings.Contains(st.LastError, "receiver-query-secret") || !strings.Contains(st.LastError, "/hook") {
		t.Errorf("last error %q: want the path, never the query", st.LastError)
	}
	_ = r
}

func TestFlappingTenantSendsOneEventPerWindow(t *testing.T) {
	r := newReceiver(t)
	opts := fastOptions(r.srv.URL, nil)
	opts.Coalesce = 300 * time.Millisecond
	n := start(t, opts)
	// Ends where it started: the first is sent, the rest fold away.
	for _, typ := range []string{notify.ConsentRequired, notify.Connected, notify.ConsentRequired, notify.Connected, notify.ConsentRequired} {
		n.Publish(event("flap", typ))
	}
	// Ends elsewhere: the first and the final state are sent.
	for _, typ := range []string{notify.ConsentRequired, notify.Connected, notify.ConsentRequired, notify.Connected} {
		n.Publish(event("settle", typ))
	}
	testwait.For(t, "settle's final state", func() bool { return len(r.accepted("settle")) == 2 })
	testwait.For(t, "flap's window to close", func() bool { return len(r.accepted("flap")) == 1 && coalesced(n) >= 4+2 })
	if got := typesOf(r.accepted("settle")); got != "tenant.consent_required tenant.connected" {
		t.Errorf("settle: got %q", got)
	}
	if got := len(r.accepted("flap")); got != 1 {
		t.Errorf("flap: got %d events; want 1", got)
	}
}

// coalesced counts the events n folded away.
func coalesced(n *notify.Notifier) int { return int(n.Status().Events["coalesced"]) }

// decided counts the events n claimed or left to another replica.
func decided(n *notify.Notifier) int {
	ev := n.Status().Events
	return int(ev["sent"] + ev["duplicate"] + ev["ignored"])
}

func typesOf(rs []received) string {
	var out []string
	for _, g := range rs {
		var b struct{ Type string }
		_ = json.Unmarshal(g.body, &b)
		out = append(out, b.Type)
	}
	return strings.Join(out, " ")
}

// TestReplicasSendEachEventOnce: two notifiers sharing a store both see
// the same change; the receiver gets it once.
func TestReplicasSendEachEventOnce(t *testing.T) {
	r := newReceiver(t)
	shared := store.NewMemory()
	defer shared.Close()
	a, b := fastOptions(r.srv.URL, nil), fastOptions(r.srv.URL, nil)
	a.Claims, b.Claims = shared, shared
	na, nb := start(t, a), start(t, b)
	na.Publish(event("acme", notify.ConsentRequired))
	nb.Publish(event("acme", notify.ConsentRequired))
	testwait.For(t, "both replicas to decide", func() bool { return decided(na)+decided(nb) == 2 })
	na.Publish(event("sentinel", notify.ConsentRequired))
	testwait.For(t, "the sentinel", func() bool { return len(r.accepted("sentinel")) == 1 })
	if got := len(r.accepted("acme")); got != 1 {
		t.Errorf("acme: got %d deliveries; want 1", got)
	}
	// A calm state never announced before is not news.
	na.Publish(event("fresh", notify.Connected))
	// A change after it is, once.
	nb.Publish(event("acme", notify.Connected))
	na.Publish(event("acme", notify.Connected))
	testwait.For(t, "acme connected", func() bool { return len(r.accepted("acme")) == 2 })
	testwait.For(t, "every decision", func() bool { return decided(na)+decided(nb) == 6 })
	na.Publish(event("sentinel2", notify.ConsentRequired))
	testwait.For(t, "the second sentinel", func() bool { return len(r.accepted("sentinel2")) == 1 })
	if len(r.accepted("fresh")) != 0 || len(r.accepted("acme")) != 2 {
		t.Errorf("fresh: %d, acme: %d; want 0 and 2", len(r.accepted("fresh")), len(r.accepted("acme")))
	}
}

// TestClaimOfADeadReplicaIsTakenOverWithTheSameID: a claim whose lease ran
// out unfinished is sent by the next replica that sees the state, with the
// id the first would have used.
func TestClaimOfADeadReplicaIsTakenOverWithTheSameID(t *testing.T) {
	shared := store.NewMemory()
	defer shared.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	opts := fastOptions(down.URL, nil)
	opts.Claims, opts.MaxAttempts, opts.Backoff = shared, 100, time.Hour
	opts.Lease = time.Millisecond
	dead := notify.New(opts)
	dead.Publish(event("acme", notify.ConsentRequired))
	testwait.For(t, "the first attempt", func() bool { return dead.Status().Deliveries["retry"] == 1 })
	_ = dead.Close(context.Background()) // dies while waiting to retry
	down.Close()

	r := newReceiver(t)
	opts = fastOptions(r.srv.URL, nil)
	opts.Claims = shared
	n := start(t, opts)
	n.Publish(event("acme", notify.ConsentRequired))
	testwait.For(t, "the take-over", func() bool { return len(r.accepted("acme")) == 1 })
	// And once it is done, nobody sends it again.
	n.Publish(event("acme", notify.ConsentRequired))
	n.Publish(event("sentinel", notify.ConsentRequired))
	testwait.For(t, "the sentinel", func() bool { return len(r.accepted("sentinel")) == 1 })
	if got := len(r.accepted("acme")); got != 1 {
		t.Errorf("acme: %d deliveries; want 1", got)
	}
}

// counterValue reads name{result=result} from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{result=%q}", name, result)
	return 0
}

// TestFullQueueDropsAndCounts: a receiver that hangs fills the bounded
// queues; further events are dropped and counted, never blocking Publish.
func TestFullQueueDropsAndCounts(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	got := 0
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		<-release
		mu.Lock()
		got++
		mu.Unlock()
	}))
	defer hang.Close()
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	defer open()
	opts := fastOptions(hang.URL, nil)
	opts.QueueSize = 1
	n := start(t, opts)
	const events = 20
	for i := range events {
		n.Publish(event(strings.Repeat("t", i+1), notify.ConsentRequired))
	}
	// Publish returned for every event although the receiver hangs.
	testwait.For(t, "a dropped event", func() bool { return n.Status().Events["dropped"] > 0 })
	open() // the receiver recovers
	testwait.For(t, "every event delivered or dropped", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return uint64(got)+n.Status().Events["dropped"] == events
	})
	// While it hung, only what the bounded queues hold could wait: one
	// delivery at the receiver, one in the endpoint's queue, one being
	// claimed and one in the claim queue (QueueSize 1 each).
	mu.Lock()
	defer mu.Unlock()
	if held := 1 + opts.QueueSize + 1 + opts.QueueSize; got > held {
		t.Errorf("%d events delivered after the receiver recovered; the queues hold at most %d", got, held)
	}
}
