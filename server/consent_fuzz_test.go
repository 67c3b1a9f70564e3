package server

import (
	"encoding/base64"
	"testing"

	"github.com/sidekey/sidekey/providers"
)

// FuzzCallbackState feeds arbitrary callback states to the decoding the
// open /_sidekey/oauth/callback endpoint does before any store lookup: it
// never panics, and only a well-formed nonce can become a store key.
func FuzzCallbackState(f *testing.F) {
	for _, s := range []string{
		"", "abc", randomNonce(),
		base64.StdEncoding.EncodeToString([]byte(`{"nonce":"` + randomNonce() + `","clientId":"x"}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"nonce":"../../tokens/acme"}`)),
		base64.StdEncoding.EncodeToString([]byte(`{"nonce":1}`)),
		"%%%", "eyJub25jZSI6bnVsbH0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, state string) {
		for _, candidate := range providers.StateNonces(state) {
			if validNonce(candidate) {
				if len(candidate) != 43 {
					t.Fatalf("accepted %q as a nonce", candidate)
				}
				for _, c := range candidate {
					if c == '/' || c == '.' {
						t.Fatalf("a nonce with %q could escape the consent folder: %q", c, candidate)
					}
				}
			}
		}
	})
}
