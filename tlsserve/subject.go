package tlsserve

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// CertSubject is cert's subject as `openssl x509 -noout -subject -nameopt
// RFC2253` prints it (without "subject="), which is how callers'
// cert_subject is written: the attributes last to first, joined by ','
// ('+' within a multi-valued RDN), openssl's short names (CN, O, OU, C, ST, L,
// street, postalCode, serialNumber, emailAddress, DC, UID, …) or the OID
// for others, and values escaped as openssl escapes them (bytes of non-ASCII
// characters as \XX). Values that are not text are "#" and their DER in hex.
//
// It is built from the raw subject, not pkix.Name.String(), which reorders
// attributes (a certificate made with -subj /CN=billing/O=Acme is
// "O=Acme,CN=billing" to openssl but "CN=billing,O=Acme" to Go) and names
// fewer of them.
func CertSubject(cert *x509.Certificate) string {
	var rdns []rdnSET
	if rest, err := asn1.Unmarshal(cert.RawSubject, &rdns); err != nil || len(rest) > 0 {
		return cert.Subject.String() // unreachable for a certificate x509 parsed
	}
	var b strings.Builder
	for i := len(rdns) - 1; i >= 0; i-- {
		for j := len(rdns[i]) - 1; j >= 0; j-- { // openssl reverses within an RDN too
			atv := rdns[i][j]
			switch {
			case j < len(rdns[i])-1:
				b.WriteByte('+')
			case i < len(rdns)-1:
				b.WriteByte(',')
			}
			name, known := opensslNames[atv.Type.String()]
			if !known {
				name = atv.Type.String()
			}
			b.WriteString(name)
			b.WriteByte('=')
			if text, ok := attributeText(atv.Value); ok && known {
				writeEscaped(&b, text)
			} else {
				b.WriteByte('#')
				b.WriteString(strings.ToUpper(hex.EncodeToString(atv.Value.FullBytes)))
			}
		}
	}
	return b.String()
}

// rdnSET is one relative distinguished name (encoding/asn1 reads a type
// whose name ends in SET as an ASN.1 SET).
type rdnSET []rawAttribute

// rawAttribute is one attribute of a name, its value left encoded.
type rawAttribute struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// opensslNames are openssl's short names of the attributes found in
// certificate subjects, by OID.
var opensslNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.4":                    "SN",
	"2.5.4.5":                    "serialNumber",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "street",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.12":                   "title",
	"2.5.4.13":                   "description",
	"2.5.4.15":                   "businessCategory",
	"2.5.4.17":                   "postalCode",
	"2.5.4.42":                   "GN",
	"2.5.4.43":                   "initials",
	"2.5.4.44":                   "generationQualifier",
	"2.5.4.46":                   "dnQualifier",
	"2.5.4.65":                   "pseudonym",
	"2.5.4.97":                   "organizationIdentifier",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
	"1.2.840.113549.1.9.1":       "emailAddress",
	"1.3.6.1.4.1.311.60.2.1.1":   "jurisdictionL",
	"1.3.6.1.4.1.311.60.2.1.2":   "jurisdictionST",
	"1.3.6.1.4.1.311.60.2.1.3":   "jurisdictionC",
}

// attributeText decodes v when it is one of the string types openssl
// prints as text (of those x509.ParseCertificate accepts in a name); ok is
// false for any other value.
func attributeText(v asn1.RawValue) (text string, ok bool) {
	if v.Class != asn1.ClassUniversal || v.IsCompound {
		return "", false
	}
	switch v.Tag {
	case asn1.TagUTF8String:
		return string(v.Bytes), utf8.Valid(v.Bytes)
	case asn1.TagNumericString, asn1.TagPrintableString, asn1.TagT61String, asn1.TagIA5String:
		runes := make([]rune, len(v.Bytes)) // one byte, one character (Latin-1)
		for i, c := range v.Bytes {
			runes[i] = rune(c)
		}
		return string(runes), true
	case asn1.TagBMPString:
		if len(v.Bytes)%2 != 0 {
			return "", false
		}
		units := make([]uint16, len(v.Bytes)/2)
		for i := range units {
			units[i] = uint16(v.Bytes[2*i])<<8 | uint16(v.Bytes[2*i+1])
		}
		return string(utf16.Decode(units)), true
	}
	return "", false
}

// writeEscaped writes value as openssl's RFC 2253 option escapes it: ,+"\<>;
// with a backslash, and so a leading '#' or space and a trailing space;
// control characters and every byte of a non-ASCII character as \XX.
func writeEscaped(b *strings.Builder, value string) {
	const hexDigits = "0123456789ABCDEF"
	n := utf8.RuneCountInString(value)
	i := 0
	for _, r := range value {
		first, last := i == 0, i == n-1
		i++
		if r >= 0x80 || r < 0x20 || r == 0x7f {
			var buf [utf8.UTFMax]byte
			for _, c := range buf[:utf8.EncodeRune(buf[:], r)] {
				b.WriteByte('\\')
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
			}
			continue
		}
		// openssl checks the last character before the first, so a value
		// of one '#' stays as it is.
		escape := strings.ContainsRune(",+\"\\<>;", r) ||
			r == ' ' && (first || last) ||
			r == '#' && first && !last
		if escape {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
}
