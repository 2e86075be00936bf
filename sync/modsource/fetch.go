package modsource

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
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

// TerraformGetter asks an http(s) URL for the source address of its
// package, as go-getter's HTTP getter does for URLs naming no archive
// format: a GET of rawURL (the caller has added terraform-get=1) that
// must answer 2xx, returning the X-Terraform-Get header and, when it is
// empty, at most maxBody bytes of the body (for a terraform-get meta
// tag). The upstream client is one. Without it, such URLs fail.
type TerraformGetter interface {
	TerraformGet(ctx context.Context, rawURL string, maxBody int64) (xTerraformGet string, body []byte, err error)
}

// RegistryCredentialsFetcher downloads a direct registry package URL into
// w (at most maxBytes) with the registry token of host, as OpenTofu 1.12
// does when the download endpoint says "use_registry_credentials": true.
// The upstream client is one. Without it, such downloads fail.
type RegistryCredentialsFetcher interface {
	FetchWithRegistryCredentials(ctx context.Context, host, rawURL string, w io.Writer, maxBytes int64) (int64, error)
}

// maxTerraformGetDepth bounds chains of X-Terraform-Get answers, as
// OpenTofu's XTerraformGetLimit of 10 does.
const maxTerraformGetDepth = 10

// maxMetaBody caps the page read for a terraform-get meta tag.
const maxMetaBody = 1 << 20

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

	netrcPath string
	netrcOnce gosync.Once
	netrc     *netrc
	netrcErr  error
}

// Option configures a [Fetcher].
type Option func(*Fetcher)

// WithHTTPFetcher sets how archives are downloaded; without it archive
// sources fail. When h is also a [TerraformGetter] or a
// [RegistryCredentialsFetcher], X-Terraform-Get URLs and direct downloads
// with registry credentials go through it too.
func WithHTTPFetcher(h HTTPFetcher) Option { return func(f *Fetcher) { f.http = h } }

// WithGit sets the git executable (a path, or a name looked up in PATH);
// default "git".
func WithGit(path string) Option { return func(f *Fetcher) { f.gitPath = path } }

// WithGitHubToken sets the token git sends to https://github.com/ as an
// HTTP header passed through the environment (never on the command line);
// default none.
func WithGitHubToken(token string) Option { return func(f *Fetcher) { f.githubToken = token } }

// WithNetrc makes archive downloads and X-Terraform-Get lookups send the
// login of the .netrc file at path for the URL's host[:port] (or its
// default entry) as HTTP basic authentication, as OpenTofu's getter does
// (Netrc: true); the caller passes $NETRC or ~/.netrc. A missing file is
// no credentials; "" (the default) reads none. Git reads ~/.netrc itself,
// as it does for OpenTofu; direct registry downloads never use it.
func WithNetrc(path string) Option { return func(f *Fetcher) { f.netrcPath = path } }

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
	if err := f.fetchPackage(ctx, src, dst, pkg, 0); err != nil {
		return pkg, fmt.Errorf("module source %s: %w", src, err)
	}
	if pkg.Subdir, err = resolveSubdir(dst, src.Subdir); err != nil {
		return pkg, fmt.Errorf("module source %s: %w", src, err)
	}
	return pkg, nil
}

// fetchPackage fetches the whole package of src (its Subdir aside) into
// the empty directory dst, recording the commit and bytes in pkg.
func (f *Fetcher) fetchPackage(ctx context.Context, src Source, dst string, pkg *Package, depth int) error {
	var err error
	var n int64
	switch src.Kind {
	case KindGit:
		pkg.Commit, err = f.fetchGit(ctx, src, dst)
	case KindArchive, KindDirect:
		n, err = f.fetchArchive(ctx, src, dst)
	case KindHTTP:
		err = f.fetchTerraformGet(ctx, src, dst, pkg, depth)
	default:
		err = fmt.Errorf("%w: kind %q", ErrUnsupportedSource, src.Kind)
	}
	pkg.Downloaded += n
	return err
}

// fetchTerraformGet asks src's URL for the real source and fetches that
// into dst. As go-getter does, a //subdir in the answer makes only that
// directory the package, and the answer must be an absolute URL or a
// getter::address (OpenTofu runs no detectors there, so neither relative
// paths nor the github.com shorthand work).
func (f *Fetcher) fetchTerraformGet(ctx context.Context, src Source, dst string, pkg *Package, depth int) error {
	tg, ok := f.http.(TerraformGetter)
	if !ok {
		return fmt.Errorf("%w: %s names no archive format and no client to ask it for X-Terraform-Get is configured", ErrUnsupportedSource, Redact(src.URL))
	}
	if depth >= maxTerraformGetDepth {
		return fmt.Errorf("%w: more than %d X-Terraform-Get redirections", ErrUnsupportedSource, maxTerraformGetDepth)
	}
	u, err := url.Parse(src.URL)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupportedSource, err)
	}
	q := u.Query()
	q.Add("terraform-get", "1")
	u.RawQuery = q.Encode() // go-getter re-encodes the query the same way
	ask, err := f.withNetrc(u.String())
	if err != nil {
		return err
	}
	header, body, err := tg.TerraformGet(ctx, ask, maxMetaBody)
	if err != nil {
		return err
	}
	next := header
	why := "a terraform-get meta tag"
	if next == "" {
		var metaErr error
		if next, metaErr = TerraformGetMeta(bytes.NewReader(body)); metaErr != nil {
			why = fmt.Sprintf("an HTML page (%v)", metaErr)
		}
	}
	if next == "" {
		return fmt.Errorf("%w: %s names no archive format OpenTofu unpacks (.zip, .tar.gz, .tgz, .tar.xz, .txz, .tar.bz2, .tar.tbz2 or ?archive=; not a plain .tar or .tbz2) and answered without an X-Terraform-Get header or %s, so OpenTofu cannot install it either", ErrUnsupportedSource, Redact(src.URL), why)
	}
	if !forcedGetterRe.MatchString(next) {
		if nu, err := url.Parse(next); err != nil || nu.Scheme == "" {
			return fmt.Errorf("%w: %s answered X-Terraform-Get %q, which is neither a URL nor a getter::address (OpenTofu resolves no relative or shorthand address there)", ErrUnsupportedSource, Redact(src.URL), Redact(next))
		}
	}
	inner, err := Parse(next)
	if err != nil {
		return fmt.Errorf("X-Terraform-Get from %s: %w", Redact(src.URL), err)
	}
	if inner.Kind == KindDirect {
		return fmt.Errorf("%w: X-Terraform-Get %q", ErrUnsupportedSource, Redact(next))
	}
	if inner.Subdir == "" {
		return f.fetchPackage(ctx, inner, dst, pkg, depth+1)
	}
	whole, err := os.MkdirTemp(filepath.Dir(dst), ".whole-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(whole) }()
	if err := f.fetchPackage(ctx, inner, whole, pkg, depth+1); err != nil {
		return err
	}
	sub, err := resolveSubdir(whole, inner.Subdir)
	if err != nil {
		return fmt.Errorf("X-Terraform-Get %s: %w", inner, err)
	}
	if err := os.Remove(dst); err != nil {
		return err
	}
	return os.Rename(filepath.Join(whole, filepath.FromSlash(sub)), dst)
}

// TerraformGetMeta returns the content of the first <meta
// name="terraform-get" content="..."> in the head of an HTML page, as
// go-getter reads it (lenient XML, stopping at <body> or </head>); ""
// when there is none.
func TerraformGetMeta(r io.Reader) (string, error) {
	d := xml.NewDecoder(r)
	d.Strict = false
	d.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "ascii", "utf-8", "utf8":
			return input, nil
		}
		return nil, fmt.Errorf("can't decode XML document using charset %q", charset)
	}
	for {
		t, err := d.Token()
		if err == io.EOF {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		switch e := t.(type) {
		case xml.StartElement:
			if strings.EqualFold(e.Name.Local, "body") {
				return "", nil
			}
			if strings.EqualFold(e.Name.Local, "meta") && attr(e.Attr, "name") == "terraform-get" {
				if v := attr(e.Attr, "content"); v != "" {
					return v, nil
				}
			}
		case xml.EndElement:
			if strings.EqualFold(e.Name.Local, "head") {
				return "", nil
			}
		}
	}
}

func attr(attrs []xml.Attr, name string) string {
	for _, a := range attrs {
		if strings.EqualFold(a.Name.Local, name) {
			return a.Value
		}
	}
	return ""
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
