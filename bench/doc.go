// Package bench measures tofu-oci-mirror against what users would do
// instead, on this machine, everything on 127.0.0.1: the test upstream
// (internal/testupstream: signed releases of synthetic providers), the CNCF
// distribution registry as a separate process with filesystem storage, the
// ORAS CLI and regctl, and a physical floor (bench/floor). Workload 6 puts
// the upstream behind an emulated wide-area link and the registry behind an
// emulated local network (bench/wan, shaping TCP proxies).
//
// The suite is the TestBench driver in this package's tests, guarded by
// TOFU_BENCH=1 so `go test ./...` skips it; `make bench` runs it and it
// writes bench/RESULTS.md. BenchmarkFirstSync runs the sync engine
// in-process for profiling with -cpuprofile. README.md in this directory
// lists the settings.
package bench
