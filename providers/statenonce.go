package providers

import "encoding/json"

// maxStateLen bounds the state StateNonces decodes: sidekey's own states
// are far shorter, and the callback that carries it is open to anyone.
const maxStateLen = 4096

// StateNonces returns the nonces a callback's state may carry, the way any
// platform carries sidekey's state back: the state itself (Istores,
// StoreHippo, OAuth 2.0), and the nonce inside it when it is base64 JSON
// (SCAYLE sends back the consent JWT's payload). The callback route is
// shared by every tenant, so the flow is found with these before the
// platform is known; that platform's AuthCode.CallbackState then checks
// the state it sent. Candidates are not validated: the caller must.
func StateNonces(state string) []string {
	if state == "" {
		return nil
	}
	out := []string{state}
	if len(state) > maxStateLen {
		return out
	}
	payload, err := decodeBase64(state)
	if err != nil {
		return out
	}
	// A map, not a struct: encoding/json matches struct fields without
	// regard to case, and sidekey's payloads spell nonce exactly so.
	var claims map[string]json.RawMessage
	if json.Unmarshal(payload, &claims) != nil {
		return out
	}
	if nonce, ok := jsonText(claims["nonce"]); ok && nonce != "" {
		out = append(out, nonce)
	}
	return out
}
