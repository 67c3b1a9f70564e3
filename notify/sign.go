package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every Standard Webhooks symmetric secret.
const SecretPrefix = "whsec_"

// The signing secret's decoded length, from the specification: between 24
// and 64 random bytes.
const (
	minSecretLen = 24
	maxSecretLen = 64
)

// ParseSecret decodes a Standard Webhooks secret "whsec_<base64>" (standard
// base64, padding optional) into its key bytes. It refuses a missing
// prefix, bad base64 and a key shorter than 24 or longer than 64 bytes.
// Errors never show the secret.
func ParseSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), SecretPrefix)
	if !ok {
		return nil, errors.New("notify: the webhook secret must start with " + SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(b64)
	}
	if err != nil {
		return nil, errors.New("notify: the webhook secret is not " + SecretPrefix + " followed by base64")
	}
	if len(key) < minSecretLen || len(key) > maxSecretLen {
		return nil, fmt.Errorf("notify: the webhook secret decodes to %d bytes; the specification wants %d to %d", len(key), minSecretLen, maxSecretLen)
	}
	return key, nil
}

// Sign returns the webhook-signature header value for a message: "v1,"
// followed by the base64 HMAC-SHA256, under key, of "id.timestamp.body"
// with timestamp in Unix seconds.
func Sign(key []byte, id string, timestamp time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(timestamp.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
