//go:build unix

package manifest

import (
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteModuleZipRefusesSpecialFiles(t *testing.T) {
	root := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	if _, err := WriteModuleZip(io.Discard, root); err == nil || !strings.Contains(err.Error(), "pipe: unsupported file type") {
		t.Fatalf("err = %v", err)
	}
}
