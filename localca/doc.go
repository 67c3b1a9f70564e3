// Package localca is sidekey's local certificate authority: the CA that
// legacy apps trust once (SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, a Java
// truststore) so that sidekey can answer them over HTTPS — on a tenant's
// own tls: local listener, and inside the forward proxy's CONNECT tunnels
// for intercepted hosts such as api.simplestore.io.
//
// Where the CA comes from:
//   - local_ca.cert_file and key_file (for instance a cert-manager Secret):
//     loaded as they are; the certificate must be a CA allowed to sign.
//   - otherwise it is generated on first use — ECDSA P-256, valid ten
//     years — and kept in the token store under the reserved key
//     "localca/ca". The store seals every value (AES-256-GCM), so the CA's
//     key is never written in plain text, and a store shared by replicas
//     (redis) gives every replica the same CA. Two replicas generating at
//     once are settled by CompareAndSwap with "create if absent": one CA
//     wins and the loser adopts it.
//
// Why no X.509 name constraints: the hosts a CA may need to cover are
// intercept_hosts, which change with the configuration, while the CA
// lives for years and is installed in apps' trust stores. A constrained CA
// would have to be regenerated — and re-trusted by every app — whenever a
// host is added. Instead sidekey bounds what it issues: a leaf is only made
// for the names a listener is configured with (GetCertificate refuses any
// other server name in the handshake), it lives seven days, and the CA key
// never leaves the process or the sealed store.
//
// Leaves are cached in memory per set of names and replaced once two
// thirds of their life have passed. The CA key and leaf keys are never
// logged, and no error text contains key material.
package localca
