// Package spool holds packages between download and upload: files that are
// unlinked at once, so whatever kills the process the kernel frees their
// space, and work directories that a later run removes when their owner
// died.
package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// spoolPrefix starts every spool file and directory name, followed by the
// owner's pid, so a later run can tell what a killed run left behind.
const spoolPrefix = "tofu-oci-mirror-"

// File creates a file in dir ("" is the system temp directory) for a
// package between download and upload. It is unlinked at once: the open descriptor keeps it alive, and whatever
// kills the process, the kernel frees the space.
func File(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, spoolPrefix+strconv.Itoa(os.Getpid())+"-*.spool")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	return f, nil
}

// WorkDir creates a directory in dir for a checkout of kind (e.g. "module");
// the caller removes it, and a run killed before it did leaves it for
// [CleanStale].
func WorkDir(dir, kind string) (string, error) {
	return os.MkdirTemp(dir, spoolPrefix+strconv.Itoa(os.Getpid())+"-"+kind+"-*")
}

// CleanStale removes the spool entries in dir whose owning process is gone, so
// a cron job killed by its timeout night after night does not fill the disk.
func CleanStale(dir string, logger *slog.Logger) {
	if dir == "" {
		dir = os.TempDir()
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, ent := range entries {
		rest, ok := strings.CutPrefix(ent.Name(), spoolPrefix)
		if !ok {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() || alive(pid) {
			continue
		}
		path := filepath.Join(dir, ent.Name())
		if err := os.RemoveAll(path); err == nil {
			logger.Info("removed what a killed run left in the spool", "path", path)
		}
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
