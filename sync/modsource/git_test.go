package modsource_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testgit"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
)

// gitLog records the git commands a Fetcher runs.
type gitLog struct {
	mu   gosync.Mutex
	cmds []string
}

func (l *gitLog) hook(args []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cmds = append(l.cmds, strings.Join(args, " "))
}

func (l *gitLog) fetches() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, c := range l.cmds {
		if _, after, ok := strings.Cut(c, " fetch "); ok {
			out = append(out, after)
		}
	}
	return out
}

// moduleRepo builds a repository with two tagged releases, a branch, and a
// commit reachable only through that branch.
type moduleRepo struct {
	*testgit.Repo
	v1, middle, v2, feature string
}

func newModuleRepo(t *testing.T, srv *testgit.Server) moduleRepo {
	r := moduleRepo{Repo: srv.NewRepo("mod")}
	r.Write(map[string]string{
		"main.tf":               "output \"v\" { value = \"1\" }\n",
		"modules/sub/main.tf":   "output \"sub\" { value = \"1\" }\n",
		"scripts/build.sh*":     "#!/bin/sh\n",
		"link.tf -> main.tf":    "",
		"docs/readme.md":        "docs\n",
		"modules/sub/README.md": "sub\n",
	})
	r.v1 = r.Commit("v1")
	r.Tag("v1.0.0", true)
	r.Write(map[string]string{"wip.tf": "# work in progress\n"})
	r.middle = r.Commit("untagged, not a branch tip")
	r.Remove("wip.tf")
	r.Write(map[string]string{"main.tf": "output \"v\" { value = \"2\" }\n"})
	r.v2 = r.Commit("v2")
	r.Tag("v2.0.0", false)
	r.Git("checkout", "-q", "-b", "feature")
	r.Write(map[string]string{"feature.tf": "# feature\n"})
	r.feature = r.Commit("feature")
	r.Git("checkout", "-q", "main")
	return r
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFetchGit(t *testing.T) {
	srv := testgit.New(t)
	repo := newModuleRepo(t, srv)
	for _, tc := range []struct {
		name, source    string
		commit, mainOut string
		subdir          string
		feature         bool
	}{
		{name: "annotated tag", source: "git::" + repo.URL + "?ref=v1.0.0", commit: repo.v1, mainOut: "1"},
		{name: "lightweight tag", source: "git::" + repo.URL + "?ref=v2.0.0", commit: repo.v2, mainOut: "2"},
		{name: "default branch", source: "git::" + repo.URL, commit: repo.v2, mainOut: "2"},
		{name: "branch", source: "git::" + repo.URL + "?ref=feature", commit: repo.feature, mainOut: "2", feature: true},
		{name: "commit SHA", source: "git::" + repo.URL + "?ref=" + repo.v1, commit: repo.v1, mainOut: "1"},
		{name: "commit SHA not at a tip", source: "git::" + repo.URL + "?ref=" + repo.middle, commit: repo.middle, mainOut: "1"},
		{name: "commit SHA off main", source: "git::" + repo.URL + "?ref=" + repo.feature, commit: repo.feature, mainOut: "2", feature: true},
		{name: "short SHA", source: "git::" + repo.URL + "?ref=" + repo.v1[:10], commit: repo.v1, mainOut: "1"},
		{name: "subdir", source: "git::" + repo.URL + "//modules/sub?ref=v1.0.0", commit: repo.v1, mainOut: "1", subdir: "modules/sub"},
		{name: "subdir glob", source: "git::" + repo.URL + "//modules/s*?ref=v1.0.0", commit: repo.v1, mainOut: "1", subdir: "modules/sub"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log gitLog
			f := modsource.New(modsource.WithGitHook(log.hook))
			dst := filepath.Join(t.TempDir(), "pkg")
			pkg, err := f.Fetch(context.Background(), tc.source, dst)
			if err != nil {
				t.Fatal(err)
			}
			if pkg.Commit != tc.commit || pkg.Subdir != tc.subdir || pkg.Dir != dst || pkg.Source.Kind != modsource.KindGit {
				t.Fatalf("got %+v, want commit %s subdir %q", pkg, tc.commit, tc.subdir)
			}
			if got := read(t, filepath.Join(dst, "main.tf")); !strings.Contains(got, `"`+tc.mainOut+`"`) {
				t.Errorf("main.tf = %q", got)
			}
			if _, err := os.Stat(filepath.Join(dst, "feature.tf")); (err == nil) != tc.feature {
				t.Errorf("feature.tf present = %v", err == nil)
			}
			if fi, err := os.Stat(filepath.Join(dst, "scripts/build.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
				t.Errorf("scripts/build.sh lost its executable bit: %v %v", fi, err)
			}
			// The whole tree stays, even for a subdir.
			if _, err := os.Stat(filepath.Join(dst, "docs/readme.md")); err != nil {
				t.Error(err)
			}
			if fetches := log.fetches(); len(fetches) == 0 || !strings.Contains(fetches[0], "--depth 1") {
				t.Errorf("first fetch is not shallow: %q", fetches)
			}
		})
	}
}

// TestFetchGitShallowByName proves names and, on protocol v2 servers,
// commit SHAs take one shallow fetch: no history beyond the commit.
func TestFetchGitShallow(t *testing.T) {
	srv := testgit.New(t)
	repo := newModuleRepo(t, srv)
	for _, ref := range []string{"v2.0.0", repo.v2} {
		var log gitLog
		dst := t.TempDir()
		if _, err := modsource.New(modsource.WithGitHook(log.hook)).Fetch(context.Background(), "git::"+repo.URL+"?ref="+ref, dst); err != nil {
			t.Fatal(err)
		}
		if f := log.fetches(); len(f) != 1 {
			t.Errorf("ref %s: fetches %q, want one shallow fetch", ref, f)
		}
		if n := testgit.Run(t, dst, "rev-list", "--count", "HEAD"); n != "1" {
			t.Errorf("ref %s: %s commits of history fetched, want 1", ref, n)
		}
	}
}

// TestFetchGitSHAFallback forces protocol v0, where the server refuses a
// commit that no ref points at, and wants the full-fetch fallback. The
// setting reaches git through GIT_CONFIG_COUNT, which the fetcher must
// extend rather than replace.
func TestFetchGitSHAFallback(t *testing.T) {
	srv := testgit.New(t)
	repo := newModuleRepo(t, srv)
	t.Setenv("GIT_CONFIG_COUNT", "1")
	t.Setenv("GIT_CONFIG_KEY_0", "protocol.version")
	t.Setenv("GIT_CONFIG_VALUE_0", "0")
	var log gitLog
	dst := t.TempDir()
	pkg, err := modsource.New(modsource.WithGitHook(log.hook)).Fetch(context.Background(), "git::"+repo.URL+"?ref="+repo.middle, dst)
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Commit != repo.middle {
		t.Fatalf("commit %s, want %s", pkg.Commit, repo.middle)
	}
	if f := log.fetches(); len(f) != 2 || !strings.Contains(f[0], "--depth 1") || strings.Contains(f[1], "--depth") {
		t.Fatalf("fetches %q, want a shallow try then a full fetch", f)
	}
	for _, r := range srv.Requests() {
		if r.GitProtocol != "" {
			t.Fatalf("request %s used %s: the user's GIT_CONFIG_* was dropped", r.Path, r.GitProtocol)
		}
	}
}

func TestFetchGitErrors(t *testing.T) {
	srv := testgit.New(t)
	repo := newModuleRepo(t, srv)
	ctx := context.Background()
	t.Run("unknown ref", func(t *testing.T) {
		_, err := modsource.New().Fetch(ctx, "git::"+repo.URL+"?ref=v9.9.9", t.TempDir())
		if !errors.Is(err, modsource.ErrGit) || !strings.Contains(err.Error(), `"v9.9.9"`) || !strings.Contains(err.Error(), repo.URL) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing subdir", func(t *testing.T) {
		_, err := modsource.New().Fetch(ctx, "git::"+repo.URL+"//nope?ref=v1.0.0", t.TempDir())
		if !errors.Is(err, modsource.ErrSubdirNotFound) || !strings.Contains(err.Error(), "//nope") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unknown repository", func(t *testing.T) {
		_, err := modsource.New().Fetch(ctx, "git::"+srv.URL+"/missing.git?ref=v1", t.TempDir())
		if !errors.Is(err, modsource.ErrGit) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("git not installed", func(t *testing.T) {
		var log gitLog
		_, err := modsource.New(modsource.WithGit(filepath.Join(t.TempDir(), "no-git")), modsource.WithGitHook(log.hook)).Fetch(ctx, "git::"+repo.URL, t.TempDir())
		if !errors.Is(err, modsource.ErrGitNotFound) || len(log.cmds) != 0 {
			t.Fatalf("err = %v, commands %q", err, log.cmds)
		}
	})
	t.Run("not empty", func(t *testing.T) {
		dst := t.TempDir()
		if err := os.WriteFile(filepath.Join(dst, "x"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := modsource.New().Fetch(ctx, "git::"+repo.URL, dst); err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestFetchGitToken: the GitHub token travels in the environment, scoped
// to https://github.com/, never on a command line and never to other hosts.
func TestFetchGitToken(t *testing.T) {
	srv := testgit.New(t)
	repo := newModuleRepo(t, srv)
	const token = "ghp_secretTOKEN123"
	var log gitLog
	if _, err := modsource.New(modsource.WithGitHubToken(token), modsource.WithGitHook(log.hook)).Fetch(context.Background(), "git::"+repo.URL+"?ref=v1.0.0", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	for _, c := range log.cmds {
		if strings.Contains(c, token) || strings.Contains(c, "x-access-token") {
			t.Fatalf("token on a command line: %s", c)
		}
	}
	for _, r := range srv.Requests() {
		if r.Authorization != "" {
			t.Fatalf("%s %s carried Authorization %q", r.Method, r.Path, r.Authorization)
		}
	}
	// What git would send to github.com: read the config back through the same environment.
	if !slices.ContainsFunc(modsource.GitEnvForTest(modsource.New(modsource.WithGitHubToken(token))), func(kv string) bool {
		return strings.HasPrefix(kv, "GIT_CONFIG_KEY_") && strings.HasSuffix(kv, "=http.https://github.com/.extraheader")
	}) {
		t.Fatal("no github.com extraheader in git's environment")
	}
}

func TestFetchGitSubmodule(t *testing.T) {
	srv := testgit.New(t)
	sub := srv.NewRepo("shared")
	sub.Write(map[string]string{"shared.tf": "# shared\n"})
	sub.Commit("shared")
	repo := srv.NewRepo("parent")
	repo.Write(map[string]string{"main.tf": "# parent\n"})
	repo.Commit("parent")
	repo.Git("-c", "protocol.allow=always", "submodule", "add", "-q", sub.URL, "vendor/shared")
	repo.Commit("add submodule")
	repo.Tag("v1.0.0", false)

	dst := t.TempDir()
	if _, err := modsource.New().Fetch(context.Background(), "git::"+repo.URL+"?ref=v1.0.0", dst); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dst, "vendor/shared/shared.tf")); got != "# shared\n" {
		t.Fatalf("submodule file = %q", got)
	}
}
