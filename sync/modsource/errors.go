package modsource

import "errors"

// Sentinel errors, wrapped with the source address, URL or entry name they
// are about and checked with errors.Is. Archive entries or symlinks that
// would escape the package root wrap manifest.ErrUnsafePath instead, the
// same sentinel the zip writer uses for the same danger.
var (
	// ErrUnsupportedSource means the source address is of a kind the mirror
	// does not fetch (s3::, gcs::, hg::, file paths, unknown getters).
	ErrUnsupportedSource = errors.New("unsupported source type")
	// ErrGitNotFound means a git source needs the git CLI and none is in PATH.
	ErrGitNotFound = errors.New("git is not installed")
	// ErrGit means a git command failed; the message carries its output.
	ErrGit = errors.New("git failed")
	// ErrInvalidArchive means a download is not a readable zip, tar.gz or tar.
	ErrInvalidArchive = errors.New("invalid archive")
	// ErrArchiveTooLarge means an archive exceeds a Limits bound: download
	// size, unpacked size (a decompression bomb) or entry count.
	ErrArchiveTooLarge = errors.New("archive exceeds limits")
	// ErrChecksum means an archive does not match its ?checksum= parameter.
	ErrChecksum = errors.New("archive checksum mismatch")
	// ErrSubdirNotFound means the //subdir of a source is not a directory
	// of the fetched package.
	ErrSubdirNotFound = errors.New("subdirectory not found in package")
)
