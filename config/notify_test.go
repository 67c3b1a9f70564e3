package config

import (
	"strings"
	"testing"
)

// goodWebhookSecret is a valid whsec_ secret (the Standard Webhooks test
// vector's).
const goodWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestNotifyWebhooks(t *testing.T) {
	tests := []struct {
		name  string // what the case checks
		src   string // the notify section
		wants []want // problems, sorted by key
	}{
		{name: "https, all events", src: `{webhooks: [{url: "https://ops.example/hooks?k=1", secret_file: /s}]}`},
		{name: "loopback http, some events", src: `{webhooks: [{url: "http://127.0.0.1:9/h", secret_file: /s, events: [tenant.connected, tenant.consent_required]}]}`},
		{name: "plain http off loopback", src: `{webhooks: [{url: "http://ops.example/h", secret_file: /s}]}`,
			wants: []want{{"notify.webhooks[0].url", "must be https"}}},
		{name: "no url", src: `{webhooks: [{secret_file: /s}]}`,
			wants: []want{{"notify.webhooks[0].url", "required"}}},
		{name: "user info", src: `{webhooks: [{url: "https://u:p@ops.example/h", secret_file: /s}]}`,
			wants: []want{{"notify.webhooks[0].url", "user info"}}},
		{name: "unknown event", src: `{webhooks: [{url: "https://ops.example/h", secret_file: /s, events: [tenant.exploded]}]}`,
			wants: []want{{"notify.webhooks[0].events[0]", `unknown event "tenant.exploded"`}}},
		{name: "no secret", src: `{webhooks: [{url: "https://ops.example/h"}]}`,
			wants: []want{{"notify.webhooks[0].secret_file", "required"}}},
		{name: "bad secret", src: `{webhooks: [{url: "https://ops.example/h", secret_file: /bad}]}`,
			wants: []want{{"notify.webhooks[0].secret_file", "must start with whsec_"}}},
		{name: "short secret", src: `{webhooks: [{url: "https://ops.example/h", secret_file: /short}]}`,
			wants: []want{{"notify.webhooks[0].secret_file", "decodes to 3 bytes"}}},
	}
	fs := files(map[string]string{"/s": goodWebhookSecret + "\n", "/bad": "hunter2-not-whsec", "/short": "whsec_YWJj"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte("notify: "+tt.src), ParseOptions{Getenv: env(nil), ReadFile: fs})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			err = c.Validate()
			checkProblems(t, problemsOf(t, err), tt.wants...)
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a problem shows the secret: %v", err)
			}
		})
	}
}

func TestNotifyWebhookSecretFileIsRead(t *testing.T) {
	c, err := Parse([]byte("notify: {webhooks: [{url: https://ops.example/h, secret_file: s}]}"),
		ParseOptions{Getenv: env(nil), ReadFile: files(map[string]string{"/etc/sk/s": goodWebhookSecret}), Dir: "/etc/sk"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Notify.Webhooks[0].Secret.Value(); got != goodWebhookSecret {
		t.Errorf("secret: got %q; want the file's content", got)
	}
}
