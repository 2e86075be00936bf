// Package testca makes a throwaway certificate authority for one test, so the
// in-process servers of testregistry and testupstream can speak real TLS and
// clients can trust them through a CA file, as they would a private CA.
package testca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// DefaultHosts are the names a server certificate covers when ServerTLSConfig
// is given none: every server of these packages listens on 127.0.0.1.
var DefaultHosts = []string{"127.0.0.1", "localhost"}

// CA is a certificate authority created for one test. Its key never leaves
// memory; only the certificate is written to File.
type CA struct {
	// CertPEM is the PEM-encoded CA certificate.
	CertPEM []byte
	// File is the path of CertPEM on disk (ca.pem in a t.TempDir()).
	File string
	// Pool holds only the CA certificate.
	Pool *x509.CertPool

	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// New creates an ECDSA P-256 CA valid for a day and writes its certificate to
// t.TempDir()/ca.pem. It fails the test on any error.
func New(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testca: generating CA key: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "testca " + t.Name()},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testca: creating CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testca: parsing CA certificate: %v", err)
	}
	ca := &CA{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		File:    filepath.Join(t.TempDir(), "ca.pem"),
		Pool:    x509.NewCertPool(),
		cert:    cert,
		key:     key,
	}
	ca.Pool.AddCert(cert)
	if err := os.WriteFile(ca.File, ca.CertPEM, 0o644); err != nil {
		t.Fatalf("testca: writing %s: %v", ca.File, err)
	}
	return ca
}

// ServerTLSConfig issues a server certificate for hosts (IP addresses or DNS
// names; empty means DefaultHosts) and returns a TLS config serving it.
func (ca *CA) ServerTLSConfig(t testing.TB, hosts ...string) *tls.Config {
	t.Helper()
	if len(hosts) == 0 {
		hosts = DefaultHosts
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testca: generating server key: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("testca: creating server certificate for %v: %v", hosts, err)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{{
			Certificate: [][]byte{der, ca.cert.Raw},
			PrivateKey:  key,
		}},
	}
}

// ClientTLSConfig returns a TLS config that trusts only this CA.
func (ca *CA) ClientTLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: ca.Pool}
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("testca: serial number: %v", err)
	}
	return n
}
