package modsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
)

// HTTPFetcher downloads a URL into w, at most maxBytes. The upstream
// client's Fetch is one: it retries, honours the CA and proxy settings and
// sends a GitHub token to GitHub only.
type HTTPFetcher interface {
	Fetch(ctx context.Context, rawURL string, w io.Writer, maxBytes int64) (int64, error)
}

// Limits bound what an archive may hold. Zero fields take the defaults.
type Limits struct {
	// MaxArchiveSize caps the download (default 256 MiB).
	MaxArchiveSize int64
	// MaxUnpackedSize caps the bytes of all files unpacked (default 1 GiB):
	// the decompression-bomb guard.
	MaxUnpackedSize int64
	// MaxEntries caps the number of entries (default 50,000).
	MaxEntries int
}

// Default limits: module packages are source code, a few MiB at most.
const (
	DefaultMaxArchiveSize  = 256 << 20
	DefaultMaxUnpackedSize = 1 << 30
	DefaultMaxEntries      = 50_000
)

func (l Limits) withDefaults() Limits {
	if l.MaxArchiveSize <= 0 {
		l.MaxArchiveSize = DefaultMaxArchiveSize
	}
	if l.MaxUnpackedSize <= 0 {
		l.MaxUnpackedSize = DefaultMaxUnpackedSize
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	return l
}

// Fetcher fetches module packages. It is safe for concurrent use.
type Fetcher struct {
	http        HTTPFetcher
	gitPath     string
	githubToken string
	limits      Limits
	tempDir     string
	logger      *slog.Logger
	gitHook     func(args []string)
	gitCAFile   string

	lookOnce gosync.Once
	gitBin   string
	gitErr   error
}

// Option configures a [Fetcher].
type Option func(*Fetcher)

// WithHTTPFetcher sets how archives are downloaded; without it archive
// sources fail.
func WithHTTPFetcher(h HTTPFetcher) Option { return func(f *Fetcher) { f.http = h } }

// WithGit sets the git executable (a path, or a name looked up in PATH);
// default "git".
func WithGit(path string) Option { return func(f *Fetcher) { f.gitPath = path } }

// WithGitHubToken sets the token git sends to https://github.com/ as an
// HTTP header passed through the environment (never on the command line);
// default none.
func WithGitHubToken(token string) Option { return func(f *Fetcher) { f.githubToken = token } }

// WithLimits bounds archives.
func WithLimits(l Limits) Option { return func(f *Fetcher) { f.limits = l } }

// WithTempDir sets where archives are spooled while unpacked (default: the
// system temp directory).
func WithTempDir(dir string) Option { return func(f *Fetcher) { f.tempDir = dir } }

// WithLogger sets the logger; git commands are logged at debug level.
func WithLogger(l *slog.Logger) Option { return func(f *Fetcher) { f.logger = l } }

// WithGitHook calls hook with the arguments of every git command before it
// runs (tests count them). It must be safe for concurrent use.
func WithGitHook(hook func(args []string)) Option { return func(f *Fetcher) { f.gitHook = hook } }

// WithGitCAFile makes git trust exactly the PEM certificates in path
// (GIT_SSL_CAINFO), e.g. the system roots plus upstream.ca_file behind a
// TLS-intercepting proxy. Empty means git's own default.
func WithGitCAFile(path string) Option { return func(f *Fetcher) { f.gitCAFile = path } }

// New returns a Fetcher.
func New(opts ...Option) *Fetcher {
	f := &Fetcher{gitPath: "git", logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(f)
	}
	f.limits = f.limits.withDefaults()
	return f
}

// Package is a fetched module package.
type Package struct {
	// Source is the parsed address it was fetched from.
	Source Source
	// Dir is the package root: the whole tree, whatever Subdir says.
	Dir string
	// Subdir is the module's directory inside the package, from the
	// address's //subdir with globs resolved; "" means the root.
	Subdir string
	// Commit is the git commit checked out; "" for archives.
	Commit string
	// Downloaded counts archive bytes downloaded; 0 for git, whose
	// transfer the git CLI does not report.
	Downloaded int64
}

// Fetch fetches source into dst, which must not exist or be an empty
// directory; the caller removes it. Git sources keep their .git directory
// there (the package zip leaves it out).
func (f *Fetcher) Fetch(ctx context.Context, source, dst string) (*Package, error) {
	src, err := Parse(source)
	if err != nil {
		return nil, err
	}
	if err := prepareDir(dst); err != nil {
		return nil, fmt.Errorf("module source %s: %w", src, err)
	}
	pkg := &Package{Source: src, Dir: dst}
	switch src.Kind {
	case KindGit:
		pkg.Commit, err = f.fetchGit(ctx, src, dst)
	case KindArchive:
		pkg.Downloaded, err = f.fetchArchive(ctx, src, dst)
	}
	if err != nil {
		return pkg, fmt.Errorf("module source %s: %w", src, err)
	}
	if pkg.Subdir, err = resolveSubdir(dst, src.Subdir); err != nil {
		return pkg, fmt.Errorf("module source %s: %w", src, err)
	}
	return pkg, nil
}

// prepareDir makes dst an empty directory.
func prepareDir(dst string) error {
	des, err := os.ReadDir(dst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dst, 0o755)
	case err != nil:
		return err
	case len(des) > 0:
		return fmt.Errorf("destination %s is not empty", dst)
	}
	return nil
}

// resolveSubdir checks that subdir is a directory of the package,
// expanding glob characters as go-getter does (exactly one match).
func resolveSubdir(root, subdir string) (string, error) {
	if subdir == "" {
		return "", nil
	}
	resolved := subdir
	if strings.ContainsAny(subdir, "*?[") {
		matches, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(subdir)))
		if err != nil {
			return "", fmt.Errorf("%w: //%s: %v", ErrSubdirNotFound, subdir, err)
		}
		if len(matches) != 1 {
			return "", fmt.Errorf("%w: //%s matches %d paths, want exactly 1", ErrSubdirNotFound, subdir, len(matches))
		}
		rel, err := filepath.Rel(root, matches[0])
		if err != nil {
			return "", err
		}
		resolved = filepath.ToSlash(rel)
	}
	fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(resolved)))
	if err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%w: //%s", ErrSubdirNotFound, subdir)
	}
	return resolved, nil
}
