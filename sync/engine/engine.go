// Package engine plans and carries out a mirror run: [Engine.Plan] asks
// upstream what exists and the target what it holds, and computes what is
// missing without writing anything; [Engine.Execute] copies exactly that.
// The plan is a value: the CLI prints the same value that sync executes,
// and tests assert on it without pushing.
//
// Providers and modules are two kinds of one idea (list versions, compare
// with what the target holds, fetch and package, publish), each in one
// file (provider.go, module.go) implementing [kind]. Plan and Execute
// drive every kind through the same scheduler and the same per-version
// dispatch, and every push goes through one copy-graph
// ([copygraph.Copier]). A third kind is one more file.
package engine

import (
	"context"
	"io"
	"log/slog"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// ProviderSource lists, downloads and verifies provider packages.
type ProviderSource interface {
	ProviderVersions(ctx context.Context, a config.ProviderAddr) (*upstream.ProviderVersions, error)
	ProviderDownload(ctx context.Context, a config.ProviderAddr, version string, p config.Platform) (*upstream.ProviderPackage, error)
	VerifyProvenance(ctx context.Context, pkg *upstream.ProviderPackage) (*upstream.Provenance, error)
	DownloadPackage(ctx context.Context, pkg *upstream.ProviderPackage, w io.Writer) (string, int64, error)
}

// ModuleSource lists the versions of a registry module and resolves where a
// version's package lives.
type ModuleSource interface {
	ModuleVersions(ctx context.Context, a config.ModuleAddr) ([]string, error)
	ModuleLocation(ctx context.Context, a config.ModuleAddr, version string) (string, error)
}

// Upstream is everything the engine asks of upstream registries; the
// upstream client is one. Fetch downloads module archives.
type Upstream interface {
	ProviderSource
	ModuleSource
	modsource.HTTPFetcher
}

// ModuleFetcher fetches a module package by its source address into dst.
// [modsource.Fetcher] is one.
type ModuleFetcher interface {
	Fetch(ctx context.Context, source, dst string) (*modsource.Package, error)
}

// Engine plans and executes runs for one upstream and one target. The zero
// value is not usable; see [New]. It is safe for concurrent use.
type Engine struct {
	up          Upstream
	inventory   target.TagReader
	publisher   target.Publisher // nil: plan only
	modules     ModuleFetcher
	concurrency int
	metadata    int // metadata calls at once: planning, download answers
	spoolDir    string
	logger      *slog.Logger
	progress    func(item.Event)
	moduleOpts  []modsource.Option
	kinds       []kind
}

// Option configures an [Engine].
type Option func(*Engine)

// DefaultConcurrency is how many packages are transferred at once. Over
// an internet link a transfer's connection gets a share of the bandwidth
// and waits a round trip per package: bench/RESULTS.md's WAN table (80 ms,
// 12 MB/s per connection, 100 MB/s in all) is fastest at 16, and on
// loopback 16 costs nothing against 4 or 8.
const DefaultConcurrency = 16

// WithConcurrency bounds how many packages are transferred at once
// (default [DefaultConcurrency]), each over its own connection.
func WithConcurrency(n int) Option {
	return func(e *Engine) {
		if n > 0 {
			e.concurrency = n
		}
	}
}

// DefaultMetadataConcurrency is how many plan entries are planned, and
// how many download answers and SHA256SUMS are asked for, at once. These
// calls are small and their cost is the round trip: at 80 ms and 4 at
// once, 200 providers' versions calls alone took 4 s (issue 15).
const DefaultMetadataConcurrency = 16

// WithMetadataConcurrency bounds the metadata calls in flight: entries
// planned at once, and the download answers and SHA256SUMS asked for
// before transfers (default [DefaultMetadataConcurrency]). Transfers have
// their own bound, [WithConcurrency].
func WithMetadataConcurrency(n int) Option {
	return func(e *Engine) {
		if n > 0 {
			e.metadata = n
		}
	}
}

// WithSpoolDir sets where packages wait between download and upload
// (default: the system temp directory). Each transfer in flight holds one
// package there.
func WithSpoolDir(dir string) Option { return func(e *Engine) { e.spoolDir = dir } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.logger = l } }

// WithProgress receives progress events; it must be safe for concurrent use.
func WithProgress(f func(item.Event)) Option { return func(e *Engine) { e.progress = f } }

// WithModuleFetcher sets how module packages are fetched (default: a
// [modsource.Fetcher] downloading archives through upstream, spooling in
// the spool directory).
func WithModuleFetcher(f ModuleFetcher) Option { return func(e *Engine) { e.modules = f } }

// WithModuleSourceOptions adds options to the default module fetcher (a
// GitHub token, limits); ignored with [WithModuleFetcher].
func WithModuleSourceOptions(opts ...modsource.Option) Option {
	return func(e *Engine) { e.moduleOpts = append(e.moduleOpts, opts...) }
}

// New returns an engine reading upstream from up and the target's content
// from inv, and publishing to pub (nil for an engine that only plans). For
// a registry inv and pub are the same [target.Target]; export plans
// against a baseline and publishes into a staging directory.
func New(up Upstream, inv target.TagReader, pub target.Publisher, opts ...Option) *Engine {
	e := &Engine{up: up, inventory: inv, publisher: pub, concurrency: DefaultConcurrency, metadata: DefaultMetadataConcurrency, logger: slog.New(slog.DiscardHandler), progress: func(item.Event) {}}
	for _, o := range opts {
		o(e)
	}
	if e.modules == nil {
		e.modules = modsource.New(append([]modsource.Option{modsource.WithHTTPFetcher(up), modsource.WithLogger(e.logger), modsource.WithTempDir(e.spoolDir)}, e.moduleOpts...)...)
	}
	e.kinds = []kind{providers{}, modules{}}
	return e
}
