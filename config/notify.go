package config

import (
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/sidekey/sidekey/notify"
)

// webhookSecrets reads every notify.webhooks[i].secret_file.
func (r *fileReader) webhookSecrets(c *Config) {
	for i := range c.Notify.Webhooks {
		w := &c.Notify.Webhooks[i]
		r.secret(webhookKey(i), "secret", &w.Secret, &w.SecretFile)
	}
}

// webhookKey names notify.webhooks[i] in problems.
func webhookKey(i int) string { return "notify.webhooks[" + strconv.Itoa(i) + "]" }

// validateNotify checks notify.webhooks: each url is https (or http to a
// loopback host), each secret a Standard Webhooks "whsec_" secret, each
// event a known type. No message shows the secret.
func (c *Config) validateNotify(ps *Problems) {
	for i, w := range c.Notify.Webhooks {
		key := webhookKey(i)
		if msg := checkWebhookURL(w.URL); msg != "" {
			ps.add(key+".url", msg)
		}
		switch {
		case w.Secret == "":
			ps.add(key+".secret_file", "required")
		default:
			if _, err := notify.ParseSecret(w.Secret.Value()); err != nil {
				ps.add(key+".secret_file", strings.TrimPrefix(err.Error(), "notify: "))
			}
		}
		seen := map[string]bool{}
		for j, e := range w.Events {
			ekey := key + ".events[" + strconv.Itoa(j) + "]"
			switch {
			case !notify.KnownType(e):
				ps.addf(ekey, "unknown event %q (known: %s)", e, strings.Join(notify.EventTypes, ", "))
			case seen[e]:
				ps.addf(ekey, "%s is listed twice", e)
			}
			seen[e] = true
		}
	}
}

// checkWebhookURL returns what is wrong with a webhook URL, or "".
func checkWebhookURL(raw string) string {
	if raw == "" {
		return "required"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "must be an absolute URL"
	}
	if u.User != nil {
		return "must not carry user info; put credentials in the secret"
	}
	if u.Fragment != "" {
		return "must not have a fragment"
	}
	switch u.Scheme {
	case "https":
		return ""
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
			return ""
		}
		return "must be https (plain http only to a loopback host)"
	default:
		return "must be https (plain http only to a loopback host)"
	}
}
