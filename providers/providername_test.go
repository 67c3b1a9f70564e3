package providers

import (
	"testing"

	"github.com/sidekey/sidekey/config"
)

// TestProviderNameProblems: a missing or unknown provider is one problem,
// with the known name spelled most like it, for tenants and apps alike.
func TestProviderNameProblems(t *testing.T) {
	tests := []struct {
		provider string // the configured provider
		want     string // the one problem's message; "" for none
	}{
		{"simplestore", ""},
		{"simplestor", `unknown provider "simplestor" (did you mean simplestore?)`},
		{"StoreHippo", `unknown provider "StoreHippo" (did you mean storehippo?)`},
		{"shopify", `unknown provider "shopify" (want one of ` + platformNames + `)`},
		{"", "required (one of " + platformNames + ")"},
	}
	for _, tt := range tests {
		for key, problems := range map[string][]config.Problem{
			"tenants.x.provider": Check("x", &config.Tenant{Provider: tt.provider}),
			"apps.x.provider":    CheckApp("x", &config.Tenant{Provider: tt.provider}),
		} {
			var got []string
			for _, p := range problems {
				if p.Key == key {
					got = append(got, p.Message)
				}
			}
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("%s %q: got %q; want no problem", key, tt.provider, got)
			case tt.want != "" && (len(got) != 1 || got[0] != tt.want):
				t.Errorf("%s %q: got %q; want exactly %q", key, tt.provider, got, tt.want)
			}
		}
	}
}
