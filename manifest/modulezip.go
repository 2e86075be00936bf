package manifest

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/mediatype"
)

// Annotations this program writes on module package manifests. OpenTofu
// ignores them; they let a later plan show the //subdir people must write
// and the registry modules a package uses without downloading its zip.
const (
	// ModuleSubdirAnnotation is the //subdir (without the slashes) the
	// upstream location named inside the package; absent means the root.
	ModuleSubdirAnnotation = "com.github.tofu-oci-mirror.module.subdir"
	// ModuleDependenciesAnnotation lists, comma-separated and sorted, the
	// registry module addresses (HOST/NAMESPACE/NAME/SYSTEM) that module
	// blocks of the package use; absent means none.
	ModuleDependenciesAnnotation = "com.github.tofu-oci-mirror.module.dependencies"
	// ModuleRewrittenAnnotation lists, comma-separated and sorted, the
	// oci:// sources the package's registry module blocks were rewritten
	// to (module_dependencies: rewrite); absent means none.
	ModuleRewrittenAnnotation = "com.github.tofu-oci-mirror.module.rewritten"
)

// zipEpochDate and zipEpochTime are the MS-DOS date and time of every
// entry of a module zip: 1980-01-01 00:00:00, the earliest a zip holds.
const (
	zipEpochDate = 1<<5 | 1 // (1980-1980)<<9 | month 1<<5 | day 1
	zipEpochTime = 0
)

// ModuleZipInfo describes a module zip written by [WriteModuleZip].
type ModuleZipInfo struct {
	// Descriptor is the zip's archive/zip layer descriptor: the sha256 and
	// size of exactly the bytes written.
	Descriptor descriptor.Descriptor
	// Files and Dirs count the entries written.
	Files, Dirs int
}

// WriteModuleZip streams the package tree under root into w as a
// deterministic zip and describes what it wrote, hashing as it goes.
//
// The same tree gives the same bytes on every run and machine built with
// the same Go release (compress/flate's output is fixed per release):
// entries are sorted by their slash-separated path, with each directory
// ("dir/") before its contents; every entry has the timestamp
// 1980-01-01 00:00:00 (as MS-DOS date and time only) and no extra fields; files are deflated and get mode
// 0755 when any executable bit is set, else 0644; directories are 0755.
// Owners, other permission bits, and empty-directory timestamps are dropped.
//
// Any path component named ".git" (the repository, or a submodule's
// pointer file) is left out. A symlink is stored as what it points at (a
// file's content, or a directory's entries under the link's name) when its
// target resolves inside root; a symlink escaping root, or a directory
// symlink that loops back to one of its own ancestors, fails with an error
// wrapping [ErrUnsafePath]. Dangling symlinks and special files (devices,
// sockets, pipes) are errors too: the package could not be installed as-is.
func WriteModuleZip(w io.Writer, root string) (ModuleZipInfo, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return ModuleZipInfo{}, fmt.Errorf("module package %s: %w", root, err)
	}
	realRoot, err = filepath.Abs(realRoot)
	if err != nil {
		return ModuleZipInfo{}, fmt.Errorf("module package %s: %w", root, err)
	}
	if fi, err := os.Stat(realRoot); err != nil {
		return ModuleZipInfo{}, fmt.Errorf("module package %s: %w", root, err)
	} else if !fi.IsDir() {
		return ModuleZipInfo{}, fmt.Errorf("module package %s: not a directory", root)
	}
	var entries []zipEntry
	if err := collect(realRoot, realRoot, "", []string{realRoot}, &entries); err != nil {
		return ModuleZipInfo{}, fmt.Errorf("module package %s: %w", root, err)
	}
	slices.SortFunc(entries, func(a, b zipEntry) int { return strings.Compare(a.name, b.name) })
	for i := 1; i < len(entries); i++ {
		if entries[i].name == entries[i-1].name {
			// Cannot happen from one directory walk; a guard, not a feature.
			return ModuleZipInfo{}, fmt.Errorf("module package %s: entry %q twice", root, entries[i].name)
		}
	}

	hw := &hashCounter{w: w, h: sha256.New()}
	zw := zip.NewWriter(hw)
	var info ModuleZipInfo
	for _, e := range entries {
		if err := writeEntry(zw, e); err != nil {
			return ModuleZipInfo{}, fmt.Errorf("module package %s: %s: %w", root, e.name, err)
		}
		if e.dir {
			info.Dirs++
		} else {
			info.Files++
		}
	}
	if err := zw.Close(); err != nil {
		return ModuleZipInfo{}, fmt.Errorf("module package %s: %w", root, err)
	}
	info.Descriptor, err = BlobDescriptor(ZipLayerMediaType, hex.EncodeToString(hw.h.Sum(nil)), hw.n)
	return info, err
}

// zipEntry is one entry to write: its name in the zip and, for files, the
// real path to read.
type zipEntry struct {
	name       string // slash-separated; directories end in "/"
	path       string // real path of a file's content
	dir        bool
	executable bool
}

// collect walks dir (a real, symlink-free path inside realRoot) and appends
// its entries under prefix. ancestors are the real paths of the directories
// being walked, to catch directory symlinks that loop.
func collect(realRoot, dir, prefix string, ancestors []string, out *[]zipEntry) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		name := de.Name()
		if name == ".git" {
			continue
		}
		full := filepath.Join(dir, name)
		zipName := prefix + name
		fi, err := os.Lstat(full)
		if err != nil {
			return err
		}
		real := full
		if fi.Mode()&fs.ModeSymlink != 0 {
			real, fi, err = resolveInside(realRoot, full, zipName)
			if err != nil {
				return err
			}
		}
		switch {
		case fi.IsDir():
			for _, a := range ancestors {
				if a == real {
					return fmt.Errorf("%w: %s: symlink loops back to its own ancestor directory", ErrUnsafePath, zipName)
				}
			}
			*out = append(*out, zipEntry{name: zipName + "/", dir: true})
			if err := collect(realRoot, real, zipName+"/", append(slices.Clip(ancestors), real), out); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			*out = append(*out, zipEntry{name: zipName, path: real, executable: fi.Mode().Perm()&0o111 != 0})
		default:
			return fmt.Errorf("%s: unsupported file type %s", zipName, fi.Mode().Type())
		}
	}
	return nil
}

// resolveInside follows a symlink and checks that it stays inside
// realRoot: its target must be relative and lexically inside, and its final
// resolution (through any further links) too.
func resolveInside(realRoot, full, zipName string) (string, fs.FileInfo, error) {
	target, err := os.Readlink(full)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", zipName, err)
	}
	if filepath.IsAbs(target) || filepath.VolumeName(target) != "" {
		// An absolute target means something else on every machine.
		return "", nil, fmt.Errorf("%w: %s: symlink to absolute path %q", ErrUnsafePath, zipName, target)
	}
	if !within(realRoot, filepath.Join(filepath.Dir(full), target)) {
		return "", nil, fmt.Errorf("%w: %s: symlink to %q points outside the package", ErrUnsafePath, zipName, target)
	}
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil, fmt.Errorf("%s: dangling symlink to %q", zipName, target)
		}
		return "", nil, fmt.Errorf("%s: %w", zipName, err)
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return "", nil, err
	}
	if !within(realRoot, real) {
		return "", nil, fmt.Errorf("%w: %s: symlink to %q points outside the package", ErrUnsafePath, zipName, target)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", zipName, err)
	}
	return real, fi, nil
}

// within reports whether path is root or below it; both must be clean
// absolute paths.
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel))
}

func writeEntry(zw *zip.Writer, e zipEntry) error {
	fh := &zip.FileHeader{
		Name: e.name,
		// Set the DOS fields, not Modified: Modified would add an extended
		// timestamp extra field.
		ModifiedDate: zipEpochDate,
		ModifiedTime: zipEpochTime,
		Method:       zip.Deflate,
	}
	switch {
	case e.dir:
		fh.Method = zip.Store
		fh.SetMode(fs.ModeDir | 0o755)
	case e.executable:
		fh.SetMode(0o755)
	default:
		fh.SetMode(0o644)
	}
	zf, err := zw.CreateHeader(fh)
	if err != nil || e.dir {
		return err
	}
	f, err := os.Open(e.path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(zf, f)
	return err
}

// hashCounter hashes and counts what passes through to w.
type hashCounter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *hashCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// ModulePackageInfo is what the mirror records about a module package in
// its manifest's annotations; the zero value records nothing, and the
// manifest is then exactly [ModulePackage]'s.
type ModulePackageInfo struct {
	// Subdir is the //subdir the upstream location named, without slashes.
	Subdir string
	// Dependencies are registry module addresses the package's module
	// blocks use; they are sorted and deduplicated when written.
	Dependencies []string
	// Rewritten are the oci:// sources its registry module blocks were
	// rewritten to; sorted and deduplicated when written.
	Rewritten []string
}

// ModulePackageAnnotated builds the image manifest of a module package, as
// [ModulePackage] does, with info kept in manifest annotations
// ([ModuleSubdirAnnotation], [ModuleDependenciesAnnotation]).
func ModulePackageAnnotated(zip descriptor.Descriptor, info ModulePackageInfo) (Artifact, error) {
	ann := map[string]string{}
	if info.Subdir != "" {
		ann[ModuleSubdirAnnotation] = info.Subdir
	}
	if len(info.Dependencies) > 0 {
		deps := slices.Clone(info.Dependencies)
		slices.Sort(deps)
		ann[ModuleDependenciesAnnotation] = strings.Join(slices.Compact(deps), ",")
	}
	if len(info.Rewritten) > 0 {
		rw := slices.Clone(info.Rewritten)
		slices.Sort(rw)
		ann[ModuleRewrittenAnnotation] = strings.Join(slices.Compact(rw), ",")
	}
	if len(ann) == 0 {
		return ModulePackage(zip)
	}
	layer := descriptor.Descriptor{MediaType: ZipLayerMediaType, Digest: zip.Digest, Size: zip.Size}
	m := ociManifest{
		SchemaVersion: 2,
		MediaType:     mediatype.OCI1Manifest,
		ArtifactType:  ModulePackageArtifactType,
		Config:        EmptyConfig(),
		Layers:        []descriptor.Descriptor{layer},
		Annotations:   ann, // encoding/json sorts map keys: deterministic
	}
	return marshal(m, m.MediaType, ModulePackageArtifactType)
}

// ModulePackageInfoOf reads the annotations [ModulePackageAnnotated]
// wrote; a manifest without them (or not JSON) gives the zero value.
func ModulePackageInfoOf(raw []byte) ModulePackageInfo {
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return ModulePackageInfo{}
	}
	info := ModulePackageInfo{Subdir: m.Annotations[ModuleSubdirAnnotation]}
	if deps := m.Annotations[ModuleDependenciesAnnotation]; deps != "" {
		info.Dependencies = strings.Split(deps, ",")
	}
	if rw := m.Annotations[ModuleRewrittenAnnotation]; rw != "" {
		info.Rewritten = strings.Split(rw, ",")
	}
	return info
}
