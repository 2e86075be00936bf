// Package testpgp makes real OpenPGP keys for tests: a bundle signer's
// key pair written as the ASCII-armored files the CLI reads
// (export --sign-key, trust.bundle_keys), optionally protected by a
// passphrase.
package testpgp

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Key is a generated key pair. PublicFile and PrivateFile are written by
// [Key.Write].
type Key struct {
	Entity                  *openpgp.Entity
	PublicArmored           string
	PrivateArmored          string
	PublicFile, PrivateFile string
}

// New generates an EdDSA key named name; a non-empty passphrase encrypts
// the private key in PrivateArmored (Entity stays decrypted).
func New(t testing.TB, name, passphrase string) *Key {
	t.Helper()
	e, err := openpgp.NewEntity(name, "test", name+"@example.test", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	k := &Key{Entity: e, PublicArmored: armored(t, openpgp.PublicKeyType, e.Serialize)}
	priv := e
	if passphrase != "" {
		// Serialize an encrypted copy; the caller keeps the decrypted one.
		var buf bytes.Buffer
		if err := e.SerializePrivate(&buf, nil); err != nil {
			t.Fatal(err)
		}
		cp, err := openpgp.ReadEntity(packet.NewReader(&buf))
		if err != nil {
			t.Fatal(err)
		}
		if err := cp.EncryptPrivateKeys([]byte(passphrase), nil); err != nil {
			t.Fatal(err)
		}
		priv = cp
		k.PrivateArmored = armored(t, openpgp.PrivateKeyType, func(w io.Writer) error { return priv.SerializePrivateWithoutSigning(w, nil) })
		return k
	}
	k.PrivateArmored = armored(t, openpgp.PrivateKeyType, func(w io.Writer) error { return priv.SerializePrivate(w, nil) })
	return k
}

func armored(t testing.TB, blockType string, serialize func(io.Writer) error) string {
	t.Helper()
	var out bytes.Buffer
	w, err := armor.Encode(&out, blockType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// Write puts the armored keys in dir as NAME.pub.asc and NAME.key.asc.
func (k *Key) Write(t testing.TB, dir, name string) *Key {
	t.Helper()
	k.PublicFile = filepath.Join(dir, name+".pub.asc")
	k.PrivateFile = filepath.Join(dir, name+".key.asc")
	if err := os.WriteFile(k.PublicFile, []byte(k.PublicArmored), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.PrivateFile, []byte(k.PrivateArmored), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}
