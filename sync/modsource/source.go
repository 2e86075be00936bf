// Package modsource fetches a module package by the source address a module
// registry returns for a version, into a local directory: git repositories
// through the git CLI (as OpenTofu does), HTTP(S) archives (zip, tar.gz,
// tar.xz, tar.bz2: the decompressors OpenTofu configures for go-getter),
// unpacked with limits and refusing entries that escape the package root,
// and HTTP(S) URLs that name their package with an X-Terraform-Get header
// or a terraform-get meta tag. It also scans a fetched package for the
// registry modules its module blocks use, and rewrites those blocks to
// oci:// sources.
//
// The rules are go-getter v1.8's as OpenTofu configures it
// (internal/getmodules in opentofu/opentofu), matched rather than imported:
// go-getter's S3 and GCS getters live in its root package and would pull
// the AWS and Google Cloud SDKs into this binary for getters we refuse.
// Only what module registries hand out is supported; s3::, gcs::, hg::,
// local paths and unknown getters fail with [ErrUnsupportedSource].
package modsource

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// Kind is how a package is fetched.
type Kind string

// Kinds of source.
const (
	// KindGit is a git repository fetched with the git CLI.
	KindGit Kind = "git"
	// KindArchive is an HTTP(S) download unpacked as a zip, tar.gz,
	// tar.xz or tar.bz2.
	KindArchive Kind = "archive"
	// KindHTTP is an HTTP(S) URL naming no archive format: as go-getter
	// does, it is asked (with terraform-get=1 added) for the real source,
	// in an X-Terraform-Get header or a <meta name="terraform-get"> tag.
	KindHTTP Kind = "http"
	// KindDirect is a registry's own package URL (OpenTofu 1.12 direct
	// downloads): fetched as it is, with the registry's credentials only
	// when CredentialsHost is set, and unpacked by content (zip, tar.gz,
	// tar.xz, tar.bz2).
	KindDirect Kind = "direct"
)

// Archive formats a source may name (?archive= or the URL's extension).
// FormatTar is a plain tar, which only sniffing finds ([Extract]): no
// OpenTofu version unpacks one from a source address.
const (
	FormatZip    = "zip"
	FormatTarGz  = "tar.gz"
	FormatTarXz  = "tar.xz"
	FormatTarBz2 = "tar.bz2"
	FormatTar    = "tar"
)

// archiveKeys maps go-getter's decompressor keys, as OpenTofu's getter
// table has them, to formats; "" marks single-file decompressors, which
// cannot produce a package directory. A URL path's longest matching
// ".KEY" suffix, or ?archive=KEY, picks one. Note "tbz2" is not a key
// (only "tar.tbz2" is), so "x.tbz2" is not unpacked by OpenTofu either.
var archiveKeys = map[string]string{
	"zip":      FormatZip,
	"tar.gz":   FormatTarGz,
	"tgz":      FormatTarGz,
	"tar.xz":   FormatTarXz,
	"txz":      FormatTarXz,
	"tar.bz2":  FormatTarBz2,
	"tar.tbz2": FormatTarBz2,
	"gz":       "",
	"bz2":      "",
	"xz":       "",
}

// archiveKeyOf returns the longest decompressor key urlPath ends with
// (".KEY", compared as go-getter does: case-sensitively), or "".
func archiveKeyOf(urlPath string) string {
	best := ""
	for k := range archiveKeys {
		if strings.HasSuffix(urlPath, "."+k) && len(k) > len(best) {
			best = k
		}
	}
	return best
}

// Source is a parsed module source address.
type Source struct {
	// Kind says how to fetch it.
	Kind Kind
	// URL is the git remote (https, http, ssh, git or scp-like
	// "user@host:path") or the archive's http(s) URL, without the getter
	// prefix, the //subdir and the parameters this package consumes.
	URL string
	// Ref is the git ref to check out: a tag, a branch or a commit SHA;
	// "" means the remote's default branch.
	Ref string
	// Subdir is the //subdir part, cleaned, without slashes at either end;
	// "" means the package root. It may hold glob characters, which Fetch
	// resolves against the fetched tree.
	Subdir string
	// Format is the archive format the address names (FormatZip,
	// FormatTarGz, FormatTarXz, FormatTarBz2); "" means it is found from
	// the content (direct registry downloads). Archives only.
	Format string
	// Checksum is the ?checksum= parameter ("sha256:HEX", also md5, sha1,
	// sha512); "" means none. Archives only.
	Checksum string
	// CredentialsHost is, for a direct download, the registry host whose
	// token goes with the request; "" sends none. Other kinds leave it "".
	CredentialsHost string
}

// String returns the address in go-getter form, with any URL password
// replaced by "xxxxx", fit for messages. Consumed archive and checksum
// parameters are left out.
func (s Source) String() string {
	var b strings.Builder
	switch s.Kind {
	case KindGit:
		b.WriteString("git::")
	case KindDirect:
		b.WriteString(directPrefix)
	}
	u := Redact(s.URL)
	q := ""
	if i := strings.Index(u, "?"); i >= 0 {
		u, q = u[:i], u[i:]
	}
	b.WriteString(u)
	if s.Subdir != "" {
		b.WriteString("//" + s.Subdir)
	}
	var params []string
	if q != "" {
		params = append(params, q[1:])
	}
	if s.Ref != "" {
		params = append(params, "ref="+url.QueryEscape(s.Ref))
	}
	if len(params) > 0 {
		b.WriteString("?" + strings.Join(params, "&"))
	}
	return b.String()
}

// Redact replaces the password of a URL's userinfo with "xxxxx", also
// after a getter prefix ("git::https://u:p@h/..."); other strings are
// returned unchanged.
func Redact(raw string) string {
	if m := forcedGetterRe.FindStringSubmatch(raw); m != nil {
		return raw[:len(raw)-len(m[2])] + Redact(m[2])
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); !has {
		return raw
	}
	return u.Redacted()
}

var (
	forcedGetterRe = regexp.MustCompile(`^([A-Za-z0-9]+)::(.+)$`)
	scpLikeRe      = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:`)
)

// Parse reads a module source address the way OpenTofu's getter does for
// the forms registries return:
//
//   - git::URL[//subdir][?ref=REF], URL being https, http, ssh, git,
//     scp-like "git@host:path" or the github.com/ORG/REPO shorthand
//   - github.com/ORG/REPO[/subdir][?ref=REF] (git over https), and
//     git@HOST:PATH without the git:: prefix
//   - https:// and http:// archives whose path ends in .zip, .tar.gz,
//     .tgz, .tar.xz, .txz, .tar.bz2 or .tar.tbz2 (go-getter's
//     decompressor keys, case-sensitive), or with ?archive=KEY;
//     ?checksum=TYPE:HEX is verified after the download
//   - other https:// and http:// URLs ([KindHTTP]), which name the real
//     source in an X-Terraform-Get header or terraform-get meta tag
//   - direct::URL, the registry's own package URL of OpenTofu 1.12's
//     direct downloads ([DirectSource] builds it)
//
// A //subdir is only recognised before the query, as go-getter does:
// "?ref=v1//sub" is refused, since OpenTofu would look for a ref "v1//sub".
// Anything else wraps [ErrUnsupportedSource]; a //subdir leaving the
// package wraps manifest.ErrUnsafePath.
func Parse(source string) (Source, error) {
	raw := strings.TrimSpace(source)
	unsupported := func(why string) (Source, error) {
		return Source{}, fmt.Errorf("module source %q: %w: %s", Redact(raw), ErrUnsupportedSource, why)
	}
	if raw == "" {
		return unsupported("empty address")
	}
	getter := ""
	rest := raw
	if m := forcedGetterRe.FindStringSubmatch(raw); m != nil {
		getter, rest = strings.ToLower(m[1]), m[2]
	}
	if getter == "direct" {
		s, err := parseDirect(rest)
		if err != nil {
			return Source{}, fmt.Errorf("module source %q: %w", Redact(raw), err)
		}
		return s, nil
	}
	rest, subdir := splitSubdir(rest)
	var s Source
	var err error
	switch {
	case getter == "git" && strings.HasPrefix(rest, "github.com/"):
		s, subdir, err = parseGitHub(rest, subdir)
	case getter == "git":
		s, err = parseGit(rest)
	case getter == "http" || getter == "https":
		s, err = parseHTTP(rest)
	case getter != "":
		return unsupported(fmt.Sprintf("the %s:: getter is not supported; the mirror fetches git:: repositories and http(s) archives", getter))
	case strings.HasPrefix(rest, "github.com/"):
		s, subdir, err = parseGitHub(rest, subdir)
	case scpLikeRe.MatchString(rest) && !strings.Contains(rest, "://"):
		s, err = parseGit(rest)
	case strings.HasPrefix(rest, "https://") || strings.HasPrefix(rest, "http://"):
		s, err = parseHTTP(rest)
	case strings.HasPrefix(rest, "git://"):
		s, err = parseGit(rest)
	case strings.HasPrefix(rest, "./") || strings.HasPrefix(rest, "../") || strings.HasPrefix(rest, "/"):
		return unsupported("a local path is not a package a registry can hand out")
	case strings.HasPrefix(rest, "bitbucket.org/"):
		return unsupported("bitbucket.org shorthand; ask for a git:: address")
	case strings.Contains(rest, ".amazonaws.com/") || strings.HasPrefix(rest, "s3://"):
		return unsupported("Amazon S3")
	case strings.HasPrefix(rest, "www.googleapis.com/storage/") || strings.HasPrefix(rest, "gs://") || strings.HasPrefix(rest, "gcs://"):
		return unsupported("Google Cloud Storage")
	default:
		return unsupported("not a git:: address, github.com shorthand or http(s) URL")
	}
	if err != nil {
		return Source{}, fmt.Errorf("module source %q: %w", Redact(raw), err)
	}
	if s.Subdir, err = cleanSubdir(subdir); err != nil {
		return Source{}, fmt.Errorf("module source %q: %w", Redact(raw), err)
	}
	return s, nil
}

// splitSubdir separates "//subdir" from an address, keeping the query on
// the address: "https://h/r.git//sub?ref=x" is "https://h/r.git?ref=x", "sub".
func splitSubdir(src string) (string, string) {
	stop := len(src)
	if i := strings.Index(src, "?"); i >= 0 {
		stop = i
	}
	offset := 0
	if i := strings.Index(src[:stop], "://"); i >= 0 {
		offset = i + 3
	}
	i := strings.Index(src[offset:stop], "//")
	if i < 0 {
		return src, ""
	}
	i += offset
	return src[:i] + src[stop:], src[i+2 : stop]
}

// cleanSubdir normalises a //subdir and refuses one leaving the package.
func cleanSubdir(subdir string) (string, error) {
	if subdir == "" {
		return "", nil
	}
	if strings.HasPrefix(subdir, "/") || strings.Contains(subdir, "\\") {
		return "", fmt.Errorf("%w: subdirectory %q", manifest.ErrUnsafePath, subdir)
	}
	c := path.Clean(subdir)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%w: subdirectory %q leaves the package", manifest.ErrUnsafePath, subdir)
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

// parseGit reads a git remote with go-getter's query parameters: ref
// (consumed), depth (ignored: the fetch depth is ours to choose), sshkey
// (refused: keys belong in the ssh agent); others stay on the URL.
func parseGit(rest string) (Source, error) {
	remote, query, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return Source{}, fmt.Errorf("%w: query %q: %v", ErrUnsupportedSource, query, err)
	}
	s := Source{Kind: KindGit, Ref: q.Get("ref")}
	if q.Has("sshkey") {
		return Source{}, fmt.Errorf("%w: the sshkey parameter (use an ssh agent instead)", ErrUnsupportedSource)
	}
	consumed := q.Has("ref") || q.Has("depth")
	q.Del("ref")
	q.Del("depth")
	if !scpLikeRe.MatchString(remote) || strings.Contains(remote, "://") {
		u, err := url.Parse(remote)
		if err != nil {
			return Source{}, fmt.Errorf("%w: git URL: %v", ErrUnsupportedSource, err)
		}
		switch u.Scheme {
		case "https", "http", "ssh", "git":
		default:
			return Source{}, fmt.Errorf("%w: git over %q (want https, http, ssh or git)", ErrUnsupportedSource, u.Scheme)
		}
		if u.Host == "" {
			return Source{}, fmt.Errorf("%w: git URL without a host", ErrUnsupportedSource)
		}
	}
	if strings.HasPrefix(remote, "-") {
		return Source{}, fmt.Errorf("%w: git URL %q", ErrUnsupportedSource, remote)
	}
	if strings.HasPrefix(s.Ref, "-") || strings.ContainsAny(s.Ref, " \t\n\x00") {
		return Source{}, fmt.Errorf("%w: git ref %q", ErrUnsupportedSource, s.Ref)
	}
	if strings.Contains(s.Ref, "//") {
		return Source{}, fmt.Errorf("%w: git ref %q: a //subdir after ?ref= is part of the ref for OpenTofu's getter, which then finds no such ref; put //subdir before the ?", ErrUnsupportedSource, s.Ref)
	}
	s.URL = remote
	switch {
	case !consumed && query != "":
		s.URL += "?" + query // as written: re-encoding could change it
	case len(q) > 0:
		s.URL += "?" + q.Encode()
	}
	return s, nil
}

// parseGitHub expands go-getter's github.com/ORG/REPO[/path] shorthand:
// https, ".git" appended, path parts beyond the repository become the
// subdirectory (before any //subdir written after them).
func parseGitHub(rest, subdir string) (Source, string, error) {
	p, query, _ := strings.Cut(rest, "?")
	parts := strings.Split(p, "/")
	if len(parts) < 3 || parts[1] == "" || parts[2] == "" {
		return Source{}, "", fmt.Errorf("%w: GitHub shorthand wants github.com/ORG/REPO", ErrUnsupportedSource)
	}
	remote := "https://" + strings.Join(parts[:3], "/")
	if !strings.HasSuffix(remote, ".git") {
		remote += ".git"
	}
	if extra := strings.Join(parts[3:], "/"); extra != "" {
		subdir = strings.TrimSuffix(extra+"/"+subdir, "/")
	}
	if query != "" {
		remote += "?" + query
	}
	s, err := parseGit(remote)
	return s, subdir, err
}

// parseHTTP reads an http(s) URL as go-getter does: ?archive=KEY or the
// path's decompressor suffix makes it an archive (checksum parameter
// consumed), a single-file decompressor is refused, and anything else is a
// [KindHTTP] URL to ask for X-Terraform-Get.
func parseHTTP(rest string) (Source, error) {
	u, err := url.Parse(rest)
	if err != nil {
		return Source{}, fmt.Errorf("%w: URL: %v", ErrUnsupportedSource, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Source{}, fmt.Errorf("%w: %q is not an http(s) URL", ErrUnsupportedSource, Redact(rest))
	}
	q := u.Query()
	key := q.Get("archive")
	fromParam := key != ""
	if fromParam {
		if b, err := strconv.ParseBool(key); err == nil && !b {
			key = "-" // archive=false: no decompressor, as in go-getter
		}
	} else {
		key = archiveKeyOf(u.Path)
	}
	format, known := archiveKeys[key]
	switch {
	case known && format == "":
		return Source{}, fmt.Errorf("%w: %q names the single-file decompressor %q, which cannot unpack a module package (OpenTofu refuses it too)", ErrUnsupportedSource, Redact(rest), key)
	case !known:
		// No decompressor: OpenTofu asks the URL for the real source. Like
		// go-getter, drop archive= and checksum= (a checksum must parse,
		// but only a file download would check it).
		if q.Has("checksum") {
			if _, _, err := checksumHash(q.Get("checksum")); err != nil {
				return Source{}, err
			}
		}
		if fromParam || q.Has("checksum") {
			u.RawQuery = strings.Join(slices.DeleteFunc(strings.Split(u.RawQuery, "&"), func(p string) bool {
				return strings.HasPrefix(p, "archive=") || strings.HasPrefix(p, "checksum=")
			}), "&")
		}
		return Source{Kind: KindHTTP, URL: u.String()}, nil
	}
	s := Source{Kind: KindArchive, Format: format}
	q.Del("archive")
	if q.Has("checksum") {
		s.Checksum = q.Get("checksum")
		if _, _, err := checksumHash(s.Checksum); err != nil {
			return Source{}, err
		}
		q.Del("checksum")
	}
	if s.Checksum != "" || fromParam {
		// Only re-encode a query we changed: signed URLs must stay as written.
		u.RawQuery = q.Encode()
	}
	s.URL = u.String()
	return s, nil
}

// directPrefix starts the address of a direct registry download.
const directPrefix = upstream.DirectLocationPrefix

// DirectSource returns the address [Parse] reads as a direct registry
// download of packageURL (an absolute http(s) URL without a fragment), as
// OpenTofu 1.12 makes when a download endpoint's JSON has
// "use_registry_credentials": with credentialsHost non-empty the
// registry's token for that host goes with the download, else none does.
// It is what the upstream client's ModuleLocation returns for them.
func DirectSource(packageURL, credentialsHost string) string {
	return upstream.DirectLocation(packageURL, credentialsHost)
}

// parseDirect reads what DirectSource wrote.
func parseDirect(rest string) (Source, error) {
	u, err := url.Parse(rest)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Source{}, fmt.Errorf("%w: direct download %q is not an absolute http(s) URL", ErrUnsupportedSource, Redact(rest))
	}
	s := Source{Kind: KindDirect}
	if u.Fragment != "" {
		host, ok := strings.CutPrefix(u.Fragment, upstream.DirectCredentialsFragment)
		if !ok || host == "" {
			return Source{}, fmt.Errorf("%w: direct download %q has a fragment", ErrUnsupportedSource, Redact(rest))
		}
		s.CredentialsHost = host
		u.Fragment, u.RawFragment = "", ""
	}
	s.URL = u.String()
	return s, nil
}
