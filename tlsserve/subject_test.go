package tlsserve

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"
)

// attr is one attribute of a test subject.
type attr struct {
	oid string // dotted
	val any    // a string, or an asn1.RawValue for other string types
}

// subjectTests were checked against `openssl x509 -noout -subject -nameopt
// RFC2253` (OpenSSL 3.0) on certificates with these subjects. Each subject
// is its RDNs in DER order.
var subjectTests = []struct {
	rdns [][]attr
	want string
}{
	{[][]attr{{{"2.5.4.10", "Acme"}}, {{"2.5.4.3", "billing"}}}, "CN=billing,O=Acme"},
	// Go's pkix.Name.String() says CN=billing,O=Acme here.
	{[][]attr{{{"2.5.4.3", "billing"}}, {{"2.5.4.10", "Acme"}}}, "O=Acme,CN=billing"},
	{[][]attr{{{"2.5.4.11", "x"}, {"2.5.4.3", "y"}}}, "OU=x+CN=y"},
	{[][]attr{{{"2.5.4.3", "a"}, {"2.5.4.10", "b"}, {"2.5.4.11", "c"}}, {{"2.5.4.6", "DE"}}}, "C=DE,OU=c+O=b+CN=a"},
	{[][]attr{{{"2.5.4.3", `a,b+c"d\e<f>g;h=i/j:k#l`}}}, `CN=a\,b\+c\"d\\e\<f\>g\;h=i/j:k#l`},
	{[][]attr{{{"2.5.4.3", " lead"}}, {{"2.5.4.10", "trail "}}, {{"2.5.4.11", "#x"}}, {{"2.5.4.11", "#"}}, {{"2.5.4.11", " "}}, {{"2.5.4.11", "  "}}},
		`OU=\ \ ,OU=\ ,OU=#,OU=\#x,O=trail\ ,CN=\ lead`},
	{[][]attr{{{"2.5.4.3", "Zürich é 日本 😀"}}}, `CN=Z\C3\BCrich \C3\A9 \E6\97\A5\E6\9C\AC \F0\9F\98\80`},
	{[][]attr{{{"2.5.4.3", "tab\there\x01\x7f"}}}, `CN=tab\09here\01\7F`},
	{[][]attr{{{"2.5.4.5", "42"}}, {{"2.5.4.9", "Main"}}, {{"2.5.4.17", "123"}}, {{"1.2.840.113549.1.9.1", "a@b.c"}}, {{"0.9.2342.19200300.100.1.25", "example"}}, {{"0.9.2342.19200300.100.1.1", "u1"}}},
		"UID=u1,DC=example,emailAddress=a@b.c,postalCode=123,street=Main,serialNumber=42"},
	{[][]attr{{{"2.5.4.4", "s"}}, {{"2.5.4.12", "t"}}, {{"2.5.4.13", "d"}}, {{"2.5.4.15", "bc"}}, {{"2.5.4.42", "g"}}, {{"2.5.4.43", "i"}}, {{"2.5.4.44", "gq"}}, {{"2.5.4.46", "dq"}}, {{"2.5.4.65", "p"}}, {{"2.5.4.97", "oi"}}},
		"organizationIdentifier=oi,pseudonym=p,dnQualifier=dq,generationQualifier=gq,initials=i,GN=g,businessCategory=bc,description=d,title=t,SN=s"},
	{[][]attr{{{"1.3.6.1.4.1.311.60.2.1.1", "jl"}}, {{"1.3.6.1.4.1.311.60.2.1.2", "jst"}}, {{"1.3.6.1.4.1.311.60.2.1.3", "DE"}}},
		"jurisdictionC=DE,jurisdictionST=jst,jurisdictionL=jl"},
	{[][]attr{{{"1.2.3.4", "x"}}, {{"2.5.4.3", "z"}}}, "CN=z,1.2.3.4=#130178"},
	{[][]attr{{{"2.5.4.3", asn1.RawValue{Tag: asn1.TagBMPString, Bytes: []byte{0, 'h', 0, 0xe9}}}}}, `CN=h\C3\A9`},
	{[][]attr{{{"2.5.4.3", asn1.RawValue{Tag: asn1.TagT61String, Bytes: []byte{'t', 0xe9}}}}, {{"2.5.4.3", asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte("ia5")}}}, {{"2.5.4.3", asn1.RawValue{Tag: asn1.TagNumericString, Bytes: []byte("123")}}}},
		`CN=123,CN=ia5,CN=t\C3\A9`},
}

func TestCertSubjectIsOpensslRFC2253(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range subjectTests {
		var rdns pkix.RDNSequence
		for _, rdn := range tt.rdns {
			var set pkix.RelativeDistinguishedNameSET
			for _, a := range rdn {
				set = append(set, pkix.AttributeTypeAndValue{Type: parseOID(t, a.oid), Value: a.val})
			}
			rdns = append(rdns, set)
		}
		raw, err := asn1.Marshal(rdns)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), RawSubject: raw,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if got := CertSubject(cert); got != tt.want {
			t.Errorf("case %d: got %q; want %q", i, got, tt.want)
		}
	}
}

func parseOID(t *testing.T, s string) asn1.ObjectIdentifier {
	t.Helper()
	var oid asn1.ObjectIdentifier
	for part := range strings.SplitSeq(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			t.Fatalf("oid %q: %v", s, err)
		}
		oid = append(oid, n)
	}
	return oid
}
