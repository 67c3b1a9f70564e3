package providers

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"
)

var stateNonceTests = []struct {
	state string   // the callback's state
	want  []string // the candidate nonces
}{
	{"", nil},
	{"plain-nonce", []string{"plain-nonce"}},
	{base64.StdEncoding.EncodeToString([]byte(`{"nonce":"n1","clientId":"c"}`)), []string{base64.StdEncoding.EncodeToString([]byte(`{"nonce":"n1","clientId":"c"}`)), "n1"}},
	{base64.RawURLEncoding.EncodeToString([]byte(`{"nonce":"n2"}`)), []string{base64.RawURLEncoding.EncodeToString([]byte(`{"nonce":"n2"}`)), "n2"}},
	{base64.StdEncoding.EncodeToString([]byte(`{"NONCE":"n3"}`)), []string{base64.StdEncoding.EncodeToString([]byte(`{"NONCE":"n3"}`))}}, // exact names only
	{base64.StdEncoding.EncodeToString([]byte(`{"nonce":""}`)), []string{base64.StdEncoding.EncodeToString([]byte(`{"nonce":""}`))}},
	{strings.Repeat("A", maxStateLen+1), []string{strings.Repeat("A", maxStateLen+1)}}, // too long to decode
}

func TestStateNonces(t *testing.T) {
	for _, tt := range stateNonceTests {
		if got := StateNonces(tt.state); !slices.Equal(got, tt.want) {
			t.Errorf("StateNonces(%.40q) = %q; want %q", tt.state, got, tt.want)
		}
	}
}
