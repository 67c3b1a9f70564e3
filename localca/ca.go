package localca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/store"
)

// StoreKey is the reserved token-store key a generated CA is kept under.
const StoreKey = "localca/ca"

// Lifetimes of what the CA makes.
const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 7 * 24 * time.Hour
	backdate     = 5 * time.Minute // tolerates clocks a little behind ours
)

// Options configures Open.
type Options struct {
	// CertFile and KeyFile are a provided CA in PEM files. Both or
	// neither; when set, Store is not used.
	CertFile, KeyFile string
	// Store keeps a generated CA. It must seal its values (store.Open and
	// store.Seal do): the CA key is stored in it. Required unless CertFile.
	Store store.Store
	// Logger receives one line when a CA is generated or adopted. Default:
	// nop. It never receives key material.
	Logger *zap.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// CA is a loaded local CA. It issues leaf certificates (see GetCertificate)
// and is safe for concurrent use.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
	now     func() time.Time

	mu     sync.Mutex                  // guards leaves; held while a leaf is made
	leaves map[string]*tls.Certificate // by names, joined with ","
}

// stored is a generated CA as the store keeps it (sealed by the store).
type stored struct {
	Cert []byte `json:"cert"` // DER
	Key  []byte `json:"key"`  // PKCS#8 DER
}

// Open returns the CA opts describe: loaded from CertFile and KeyFile, or
// read from the store, or generated and stored there when the store has
// none yet.
func Open(ctx context.Context, opts Options) (*CA, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var (
		cert *x509.Certificate
		key  crypto.Signer
		err  error
	)
	switch {
	case opts.CertFile != "" || opts.KeyFile != "":
		cert, key, err = loadFiles(opts.CertFile, opts.KeyFile)
	case opts.Store != nil:
		cert, key, err = loadOrGenerate(ctx, opts.Store, opts.Now, opts.Logger)
	default:
		err = errors.New("localca: no CA files and no store to keep a generated CA")
	}
	if err != nil {
		return nil, err
	}
	return &CA{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		key:     key,
		now:     opts.Now,
		leaves:  make(map[string]*tls.Certificate),
	}, nil
}

// CertificatePEM returns the CA certificate in PEM form: what apps trust.
func (ca *CA) CertificatePEM() []byte { return append([]byte(nil), ca.certPEM...) }

// Certificate returns the CA certificate. The caller must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// loadFiles reads a provided CA. Errors name the files, never their content.
func loadFiles(certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	if certFile == "" || keyFile == "" {
		return nil, nil, errors.New("localca: local_ca needs both cert_file and key_file")
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("localca: local_ca %s and %s: %w", certFile, keyFile, err)
	}
	cert := pair.Leaf
	if cert == nil {
		if cert, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, nil, fmt.Errorf("localca: local_ca.cert_file %s: %w", certFile, err)
		}
	}
	if !cert.IsCA || cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, fmt.Errorf("localca: local_ca.cert_file %s is not a CA certificate allowed to sign certificates", certFile)
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("localca: local_ca.key_file %s: the key cannot sign", keyFile)
	}
	return cert, key, nil
}

// loadOrGenerate reads the CA from st, generating and storing one when
// there is none. When another replica stores one first, that one is used.
func loadOrGenerate(ctx context.Context, st store.Store, now func() time.Time, log *zap.Logger) (*x509.Certificate, crypto.Signer, error) {
	raw, err := st.Load(ctx, StoreKey)
	if err == nil {
		return decode(raw)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("localca: reading the CA from the store: %w", err)
	}
	fresh, err := generate(now())
	if err != nil {
		return nil, nil, err
	}
	swapped, err := st.CompareAndSwap(ctx, StoreKey, nil, fresh)
	if err != nil {
		return nil, nil, fmt.Errorf("localca: storing the new CA: %w", err)
	}
	if !swapped { // another replica stored its CA first: use that one
		if raw, err = st.Load(ctx, StoreKey); err != nil {
			return nil, nil, fmt.Errorf("localca: reading the CA from the store: %w", err)
		}
		log.Info("using the local CA another replica generated")
		return decode(raw)
	}
	cert, key, err := decode(fresh)
	if err == nil {
		log.Info("generated the local CA; `sidekey ca` prints its certificate for apps to trust",
			zap.String("subject", cert.Subject.String()), zap.Time("not_after", cert.NotAfter))
	}
	return cert, key, err
}

// generate makes a new CA: an ECDSA P-256 key and a self-signed
// certificate valid for ten years, encoded for the store.
func generate(now time.Time) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("localca: generating the CA key: %w", err)
	}
	serial := randomSerial()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"sidekey"},
			CommonName:   "sidekey local CA " + serial.Text(16)[:8],
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("localca: signing the CA certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("localca: encoding the CA key: %w", err)
	}
	return json.Marshal(stored{Cert: der, Key: pkcs8})
}

// decode reads a stored CA.
func decode(raw []byte) (*x509.Certificate, crypto.Signer, error) {
	var s stored
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, nil, fmt.Errorf("localca: the stored CA (%s) is damaged: %w", StoreKey, err)
	}
	cert, err := x509.ParseCertificate(s.Cert)
	if err != nil {
		return nil, nil, fmt.Errorf("localca: the stored CA certificate (%s) is damaged: %w", StoreKey, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(s.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("localca: the stored CA key (%s) is damaged", StoreKey)
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("localca: the stored CA key (%s) cannot sign", StoreKey)
	}
	return cert, key, nil
}

// randomSerial returns a random positive 127-bit serial number.
func randomSerial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails: crypto/rand crashes the program rather than return an error
	b[0] &= 0x7f
	b[0] |= 0x40 // a fixed top bit: every serial has the same length
	return new(big.Int).SetBytes(b)
}
