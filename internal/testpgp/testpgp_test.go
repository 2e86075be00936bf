package testpgp

import (
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/bundle"
)

func TestKeysLoadAsTheCLIReadsThem(t *testing.T) {
	dir := t.TempDir()
	plain := New(t, "plain", "").Write(t, dir, "plain")
	if _, err := bundle.LoadSigningKey(plain.PrivateFile, nil); err != nil {
		t.Fatal(err)
	}
	locked := New(t, "locked", "s3cret").Write(t, dir, "locked")
	if _, err := bundle.LoadSigningKey(locked.PrivateFile, nil); err == nil {
		t.Fatal("a protected key loaded without its passphrase")
	}
	if _, err := bundle.LoadSigningKey(locked.PrivateFile, []byte("wrong")); err == nil {
		t.Fatal("a protected key loaded with a wrong passphrase")
	}
	if _, err := bundle.LoadSigningKey(locked.PrivateFile, []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	keys, err := bundle.LoadTrustedKeys([]string{plain.PublicFile, locked.PublicFile})
	if err != nil || len(keys) != 2 {
		t.Fatalf("LoadTrustedKeys: %d keys, %v", len(keys), err)
	}
}
