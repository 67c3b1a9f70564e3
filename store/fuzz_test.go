package store

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"
)

func FuzzParseKey(f *testing.F) {
	key := testKey(9)
	for _, seed := range [][]byte{
		key,
		append(bytes.Clone(key), '\n'),
		[]byte(hex.EncodeToString(key)),
		[]byte(hex.EncodeToString(key) + "\r\n"),
		[]byte(base64.StdEncoding.EncodeToString(key) + "\n"),
		[]byte(base64.RawURLEncoding.EncodeToString(key)),
		[]byte(""),
		[]byte("\n"),
		[]byte("correct-horse-battery-staple-abc"),
		[]byte(hex.EncodeToString(key[:16])),
		bytes.Repeat([]byte{'='}, 44),
		bytes.Repeat([]byte{0xff}, 5000),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := parseKey(data)
		if err != nil {
			if key != nil {
				t.Fatalf("parseKey returned a key with error %v", err)
			}
			return
		}
		if len(key) != KeySize {
			t.Fatalf("parseKey returned a %d-byte key; want %d", len(key), KeySize)
		}
		// Whatever key was read, its hex and base64 forms read back the same.
		for _, form := range []string{hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key) + "\n"} {
			again, err := parseKey([]byte(form))
			if err != nil || !bytes.Equal(again, key) {
				t.Fatalf("re-parsing %q: got %x, %v; want %x", form, again, err, key)
			}
		}
	})
}

func FuzzOpenSealed(f *testing.F) {
	s, err := newSealer(testKey(1))
	if err != nil {
		f.Fatal(err)
	}
	good := s.seal("tenants/acme/token", []byte("token"))
	f.Add("tenants/acme/token", good)
	f.Add("tenants/other/token", good)
	f.Add("k", []byte{})
	f.Add("k", []byte{sealVersion})
	f.Add("k", append([]byte{2}, good[1:]...))
	f.Add("", bytes.Repeat([]byte{sealVersion}, sealOverhead))
	f.Fuzz(func(t *testing.T, name string, blob []byte) {
		v, err := s.open(name, blob)
		if err != nil && !errors.Is(err, ErrWrongKey) {
			t.Fatalf("open: got %v; want nil or ErrWrongKey", err)
		}
		// good differs between fuzzing processes (its nonce is random), so
		// compare what it holds rather than its bytes.
		if err == nil && (name != "tenants/acme/token" || string(v) != "token") {
			t.Fatalf("open(%q, %x) succeeded with %q; only the seeded value may open", name, blob, v)
		}
		// Any bytes round-trip through seal and open under any name.
		sealed := s.seal(name, blob)
		back, err := s.open(name, sealed)
		if err != nil || !bytes.Equal(back, blob) {
			t.Fatalf("open(seal(%x)): got %x, %v", blob, back, err)
		}
	})
}
