// Package notify sends sidekey's operator events — a tenant needs consent,
// will need it soon, connected, disconnected, or keeps failing to refresh —
// to webhooks signed per the Standard Webhooks specification
// (https://www.standardwebhooks.com): headers webhook-id, webhook-timestamp
// and webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>"
// under a "whsec_<base64>" secret, so receivers verify them with any
// Standard Webhooks library.
//
// What is guaranteed, and why the design looks as it does:
//
//   - At least once. A delivery is retried after a network error, a 5xx or
//     a 429 (honouring Retry-After), with exponential backoff and jitter, up
//     to Options.MaxAttempts. Other answers (3xx, 4xx) are final: a redirect
//     is never followed, because the request carries a signature meant for
//     the configured URL only. Every attempt of one event carries the same
//     webhook-id, so a receiver deduplicates by it.
//   - Once across the fleet. Replicas sharing a store agree through one
//     record per tenant (key notify/tenants/<tenant>): the last event type
//     announced, its sequence number and a claim lease. An event is sent by
//     the replica whose CompareAndSwap moves the record to the new type; the
//     others see the type already there and stay quiet. The webhook-id is
//     derived from tenant, type and sequence, so a replica that takes over a
//     claim whose holder died (its lease ran out before it marked the event
//     done) sends the very same id. A claim held longer than its lease (a
//     receiver down for the whole retry schedule) can be taken over and the
//     event sent twice — with one id.
//   - No storm. Events of one tenant are coalesced within Options.Coalesce:
//     the first is sent at once; later ones inside the window wait for its
//     end, and only the last of them is sent, and only if it differs from
//     what was sent. A flapping tenant costs one event per window and the
//     receiver always ends up told the final state.
//   - Bounded memory. Events wait in bounded queues; when one is full the
//     event is dropped and counted (sidekey_webhook_events_total{result=
//     "dropped"}), never blocking the caller.
//
// No event carries a token, refresh token or secret: the body is built from
// names, states, times, a connect URL and secret-free error text. The last
// delivery error (Status) names the endpoint by scheme, host and path only.
package notify
