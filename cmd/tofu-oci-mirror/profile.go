package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
)

// profileEnv names a file to write a CPU profile of the whole run to (for
// `go tool pprof`); "%p" in it is replaced by the process id, so runs of
// a benchmark do not overwrite each other. It is read by main only.
const profileEnv = "TOFU_OCI_MIRROR_CPUPROFILE"

// startProfile starts the CPU profile profileEnv asks for and returns
// what stops it; a file that cannot be written is reported and skipped.
func startProfile() func() {
	path := os.Getenv(profileEnv)
	if path == "" {
		return func() {}
	}
	path = strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid()))
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tofu-oci-mirror: %s: %v\n", profileEnv, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "tofu-oci-mirror: %s: %v\n", profileEnv, err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
