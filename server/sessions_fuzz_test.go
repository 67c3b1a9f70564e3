package server

import (
	"encoding/hex"
	"strings"
	"testing"
)

// FuzzHandleHash: a session handle or ticket is accepted only in the shape
// randomNonce makes, and becomes a 64-hex store name — never a path.
func FuzzHandleHash(f *testing.F) {
	f.Add(randomNonce())
	f.Add("")
	f.Add(strings.Repeat("A", 43))
	f.Add(strings.Repeat("A", 42) + "/")
	f.Add("../../tokens/shop")
	f.Add(strings.Repeat("é", 22))
	f.Fuzz(func(t *testing.T, handle string) {
		hash, ok := handleHash(handle)
		if !ok {
			if hash != "" {
				t.Fatalf("refused %q but named %q", handle, hash)
			}
			return
		}
		if len(handle) != 43 || strings.ContainsAny(handle, "/.=+% ") {
			t.Fatalf("accepted %q", handle)
		}
		if b, err := hex.DecodeString(hash); err != nil || len(b) != 32 {
			t.Fatalf("hash %q of %q is not 64 hex", hash, handle)
		}
		if strings.Contains(hash, handle) {
			t.Fatal("the store name contains the handle")
		}
	})
}
