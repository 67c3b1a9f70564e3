package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// endpoint is an Endpoint with its queue.
type endpoint struct {
	Endpoint
	queue chan *delivery
}

// delivery is one event on its way to one endpoint.
type delivery struct {
	job  *announcement
	id   string    // webhook-id, the same on every attempt
	at   time.Time // webhook-timestamp is the attempt's time; this is the event's
	body []byte
}

// maxRetryAfter caps a receiver's Retry-After.
const maxRetryAfter = 10 * time.Minute

// deliverAll sends ep's queued deliveries one after another.
func (n *Notifier) deliverAll(ep *endpoint) {
	for {
		select {
		case <-n.ctx.Done():
			return
		case d := <-ep.queue:
			n.deliver(ep, d)
			n.settle(d.job)
		}
	}
}

// deliver tries d until ep accepts it, answers with a final failure, the
// attempts run out or the notifier closes.
func (n *Notifier) deliver(ep *endpoint, d *delivery) {
	wait := n.backoff
	for attempt := 1; ; attempt++ {
		retryAfter, err := n.attempt(ep, d)
		if err == nil {
			n.metrics.deliveries.WithLabelValues("success").Inc()
			return
		}
		n.recordError(err.Error())
		var final *finalError
		if errors.As(err, &final) || attempt >= n.attempts {
			n.metrics.deliveries.WithLabelValues("failure").Inc()
			n.log.Warn("webhook delivery failed", zap.String("id", d.id), zap.Int("attempts", attempt), zap.Error(err))
			return
		}
		n.metrics.deliveries.WithLabelValues("retry").Inc()
		pause := retryAfter
		if pause <= 0 {
			// Jitter: somewhere in [wait/2, wait].
			pause = wait/2 + rand.N(wait/2+1)
			wait = min(wait*2, n.maxWait)
		}
		t := time.NewTimer(pause)
		select {
		case <-n.ctx.Done():
			t.Stop()
			d.job.failed.Store(true)
			return
		case <-t.C:
		}
	}
}

// finalError is a failure that retrying will not mend (3xx, 4xx but 429).
type finalError struct{ msg string }

func (e *finalError) Error() string { return e.msg }

// attempt makes one POST. A nil error is a 2xx. retryAfter is the
// receiver's Retry-After on a 429 or 5xx, if it gave one.
func (n *Notifier) attempt(ep *endpoint, d *delivery) (retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(n.ctx, n.client.Timeout+time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(d.body))
	if err != nil {
		return 0, &finalError{msg: "notify: POST " + redactURL(ep.URL) + ": bad request"}
	}
	now := n.now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sidekey-webhooks")
	req.Header.Set("webhook-id", d.id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", Sign(ep.Key, d.id, now, d.body))
	resp, err := n.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the whole URL
		}
		return 0, fmt.Errorf("notify: POST %s: %w", redactURL(ep.URL), err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	msg := fmt.Sprintf("notify: POST %s: %s", redactURL(ep.URL), resp.Status)
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return 0, nil
	case code == http.StatusTooManyRequests || code >= 500:
		return parseRetryAfter(resp.Header.Get("Retry-After"), now), errors.New(msg)
	default:
		return 0, &finalError{msg: msg}
	}
}

// parseRetryAfter reads a Retry-After of seconds or an HTTP date, capped
// at maxRetryAfter; 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// redactURL is raw without user info, query or fragment: what an error may
// show of a webhook URL, whose query may carry a receiver's token.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}
