package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// sealedOver returns a store sealed with key over a fresh memory store, and
// that memory store, to look at what sealing wrote.
func sealedOver(t *testing.T, key []byte) (sealed, inner Store) {
	t.Helper()
	inner = closeAtCleanup(t, NewMemory())
	sealed, err := Seal(inner, key)
	if err != nil {
		t.Fatal(err)
	}
	return sealed, inner
}

func TestSealWritesCiphertext(t *testing.T) {
	sealed, inner := sealedOver(t, testKey(1))
	const token = "at-5f0c2e9b-plaintext-token"
	mustStore(t, sealed, "tenants/acme/token", token)
	first := mustLoad(t, inner, "tenants/acme/token")
	mustStore(t, sealed, "tenants/acme/token", token)
	second := mustLoad(t, inner, "tenants/acme/token")

	if strings.Contains(first, token) {
		t.Errorf("the inner store holds the plaintext")
	}
	if first[0] != sealVersion || len(first) != len(token)+sealOverhead {
		t.Errorf("sealed value: version %d, %d bytes; want version %d, %d bytes", first[0], len(first), sealVersion, len(token)+sealOverhead)
	}
	if first == second {
		t.Errorf("two seals of the same value are identical: the nonce is not fresh")
	}
	if got := mustLoad(t, sealed, "tenants/acme/token"); got != token {
		t.Errorf("Load: got %q; want %q", got, token)
	}
}

func TestSealValueMovedToAnotherKeyFails(t *testing.T) {
	sealed, inner := sealedOver(t, testKey(1))
	mustStore(t, sealed, "tenants/acme/token", "acme-token")
	raw := mustLoad(t, inner, "tenants/acme/token")
	mustStore(t, inner, "tenants/evil/token", raw)

	_, err := sealed.Load(ctxT(t), "tenants/evil/token")
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Load of a moved value: got %v; want ErrWrongKey", err)
	}
	if !strings.Contains(err.Error(), "tenants/evil/token") || strings.Contains(err.Error(), "acme-token") {
		t.Errorf("error %q: want it to name the key and not show the value", err)
	}
	if _, err := sealed.Take(ctxT(t), "tenants/evil/token"); !errors.Is(err, ErrWrongKey) {
		t.Errorf("Take of a moved value: got %v; want ErrWrongKey", err)
	}
}

func TestSealOtherKeyFails(t *testing.T) {
	sealed, inner := sealedOver(t, testKey(1))
	mustStore(t, sealed, "tenants/acme/refresh", "acme-refresh-token")
	other, err := Seal(inner, testKey(2))
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.Load(ctxT(t), "tenants/acme/refresh")
	if !errors.Is(err, ErrWrongKey) || strings.Contains(err.Error(), "acme-refresh-token") {
		t.Errorf("Load with another key: got %v; want ErrWrongKey without the value", err)
	}
}

func TestSealDetectsDamage(t *testing.T) {
	s, err := newSealer(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	good := s.seal("k", []byte("value"))
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x01
		if _, err := s.open("k", bad); !errors.Is(err, ErrWrongKey) {
			t.Errorf("byte %d flipped: got %v; want ErrWrongKey", i, err)
		}
	}
	for _, n := range []int{0, 1, sealOverhead - 1} {
		if _, err := s.open("k", good[:n]); !errors.Is(err, ErrWrongKey) {
			t.Errorf("cut to %d bytes: got %v; want ErrWrongKey", n, err)
		}
	}
	if v, err := s.open("k", good); err != nil || string(v) != "value" {
		t.Errorf("open of the undamaged value: got %q, %v; want %q", v, err, "value")
	}
}

func TestSealTakeOpens(t *testing.T) {
	sealed, _ := sealedOver(t, testKey(1))
	mustStore(t, sealed, "consent/abc", "pkce-verifier")
	v, err := sealed.Take(ctxT(t), "consent/abc")
	if err != nil || string(v) != "pkce-verifier" {
		t.Errorf("Take: got %q, %v; want %q", v, err, "pkce-verifier")
	}
}

func TestSealKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := Seal(NewMemory(), make([]byte, n)); err == nil {
			t.Errorf("Seal with a %d-byte key: got nil error; want one", n)
		}
	}
}

func TestSealCopiesKey(t *testing.T) {
	key := testKey(1)
	sealed, _ := sealedOver(t, key)
	mustStore(t, sealed, "k", "v")
	key[0] ^= 0xFF // changing the caller's slice must not change the store's key
	if got := mustLoad(t, sealed, "k"); got != "v" {
		t.Errorf("Load after the caller changed its key slice: got %q; want %q", got, "v")
	}
}
