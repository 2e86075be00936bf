// Package testgit serves git repositories made by a test over smart HTTP on
// 127.0.0.1, through the real git-http-backend run as a CGI program, and
// counts the requests it gets. Tests that need it are skipped when git or
// git-http-backend is not installed.
package testgit

import (
	"bytes"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Server is a running git smart-HTTP server.
type Server struct {
	// URL is "http://127.0.0.1:PORT", without a trailing slash; repository
	// NAME is at URL + "/NAME.git".
	URL string
	// Root holds the bare repositories.
	Root string
	// CAFile is the PEM file of the certificate a NewTLS server presents
	// (not trusted by git unless told); "" for New.
	CAFile string

	t    testing.TB
	mu   sync.Mutex
	reqs []Request
}

// Request is one request the server received.
type Request struct {
	// Method and Path are the request's; Query is the raw query.
	Method, Path, Query string
	// Authorization is the header's value, "" when absent.
	Authorization string
	// GitProtocol is the Git-Protocol header ("version=2" for protocol v2).
	GitProtocol string
}

// backend returns the path of git-http-backend, or fails the test.
func backend(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed: the module tests need the real git CLI (apt-get install git)")
	}
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("git-http-backend is not installed (it comes with Debian's git package): %v", err)
	}
	return p
}

// New starts a server and stops it in t.Cleanup.
func New(t testing.TB) *Server { t.Helper(); return start(t, false) }

// NewTLS is New over HTTPS with a self-signed certificate in CAFile, for
// tests of which CA roots git is handed.
func NewTLS(t testing.TB) *Server { t.Helper(); return start(t, true) }

func start(t testing.TB, useTLS bool) *Server {
	t.Helper()
	s := &Server{Root: t.TempDir(), t: t}
	h := &cgi.Handler{
		Path:       backend(t),
		Root:       "/",
		Env:        []string{"GIT_PROJECT_ROOT=" + s.Root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull},
		InheritEnv: []string{"PATH"},
		Stderr:     io.Discard, // "Not a git repository" for a test's missing repo is no news
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			Authorization: r.Header.Get("Authorization"), GitProtocol: r.Header.Get("Git-Protocol")})
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	if useTLS {
		srv.StartTLS()
		s.CAFile = filepath.Join(t.TempDir(), "git-ca.pem")
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(s.CAFile, pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// ResetRequests forgets the requests received so far.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = nil
}

// Repo is a bare repository the server serves, with a work tree to build
// commits in.
type Repo struct {
	// URL is the clone URL.
	URL string
	// GitDir is the bare repository, WorkTree the files committed from.
	GitDir, WorkTree string

	t testing.TB
}

// NewRepo creates an empty repository NAME.git whose default branch is main.
func (s *Server) NewRepo(name string) *Repo {
	s.t.Helper()
	r := &Repo{URL: s.URL + "/" + name + ".git", GitDir: filepath.Join(s.Root, name+".git"), WorkTree: s.t.TempDir(), t: s.t}
	Run(s.t, "", "init", "-q", "--bare", "--initial-branch=main", r.GitDir)
	return r
}

// Write creates or replaces files in the work tree: a name ending in "*"
// is made executable (the "*" is dropped), "name -> target" is a symlink,
// and an empty content with a name ending in "/" is a directory.
func (r *Repo) Write(files map[string]string) {
	r.t.Helper()
	for name, content := range files {
		if link, target, ok := strings.Cut(name, " -> "); ok {
			p := filepath.Join(r.WorkTree, filepath.FromSlash(link))
			mustMkdir(r.t, filepath.Dir(p))
			_ = os.Remove(p)
			if err := os.Symlink(target, p); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "*") {
			name, mode = strings.TrimSuffix(name, "*"), 0o755
		}
		p := filepath.Join(r.WorkTree, filepath.FromSlash(name))
		mustMkdir(r.t, filepath.Dir(p))
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			r.t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			r.t.Fatal(err)
		}
	}
}

// Remove deletes files from the work tree.
func (r *Repo) Remove(names ...string) {
	r.t.Helper()
	for _, n := range names {
		if err := os.RemoveAll(filepath.Join(r.WorkTree, filepath.FromSlash(n))); err != nil {
			r.t.Fatal(err)
		}
	}
}

// Commit commits the whole work tree on the current branch and returns the
// commit's SHA.
func (r *Repo) Commit(msg string) string {
	r.t.Helper()
	r.Git("add", "-A")
	r.Git("commit", "-q", "--allow-empty", "-m", msg)
	return r.Git("rev-parse", "HEAD")
}

// Tag tags HEAD; annotated tags carry a message, as release tools make them.
func (r *Repo) Tag(name string, annotated bool) {
	r.t.Helper()
	if annotated {
		r.Git("tag", "-a", "-m", "release "+name, name)
	} else {
		r.Git("tag", name)
	}
}

// Git runs git on the repository and its work tree and returns the trimmed output.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	return Run(r.t, r.WorkTree, append([]string{"--git-dir=" + r.GitDir, "--work-tree=" + r.WorkTree}, args...)...)
}

// Run runs git in dir with a fixed identity and no user or system config,
// failing the test on error, and returns the trimmed standard output.
func Run(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_AUTHOR_NAME=testgit", "GIT_AUTHOR_EMAIL=testgit@example.invalid",
		"GIT_COMMITTER_NAME=testgit", "GIT_COMMITTER_EMAIL=testgit@example.invalid",
		"GIT_AUTHOR_DATE=2024-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2024-01-02T03:04:05Z",
		"GIT_ALLOW_PROTOCOL=http:https:file",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

func mustMkdir(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}
