package modsource_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testgit"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
)

// TestFetchGitCAFile: behind a TLS-intercepting proxy git must trust the
// CA the HTTPS client trusts. A server whose certificate git's own roots
// do not know is refused, and cloned once WithGitCAFile names its CA.
func TestFetchGitCAFile(t *testing.T) {
	// git skips verification when GIT_SSL_NO_VERIFY is set at all.
	for _, k := range []string{"GIT_SSL_NO_VERIFY", "GIT_SSL_CAINFO"} {
		unsetEnv(t, k)
	}
	srv := testgit.NewTLS(t)
	repo := newModuleRepo(t, srv)
	source := "git::" + repo.URL + "?ref=v1.0.0"

	_, err := modsource.New().Fetch(context.Background(), source, filepath.Join(t.TempDir(), "pkg"))
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "certificate") {
		t.Fatalf("git trusted a certificate nobody handed it: %v", err)
	}
	pkg, err := modsource.New(modsource.WithGitCAFile(srv.CAFile)).Fetch(context.Background(), source, filepath.Join(t.TempDir(), "pkg"))
	if err != nil {
		t.Fatalf("with the server's CA: %v", err)
	}
	if got := read(t, filepath.Join(pkg.Dir, "main.tf")); !strings.Contains(got, `"1"`) {
		t.Fatalf("main.tf = %q", got)
	}
}

// unsetEnv removes k from the environment until t ends (t.Setenv cannot
// unset).
func unsetEnv(t *testing.T, k string) {
	t.Setenv(k, "") // marks the test non-parallel and restores k afterwards
	if err := os.Unsetenv(k); err != nil {
		t.Fatal(err)
	}
}
