package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/provenance"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/engine"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"

	"github.com/urfave/cli/v2"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// commonFlags are accepted by every command, after the command name.
func commonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: config.DefaultFile, Usage: "plan file", EnvVars: []string{"TOFU_OCI_MIRROR_CONFIG"}},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format on stderr: text or json (default on a terminal: a readable format)"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		&cli.BoolFlag{Name: "no-progress", Usage: "never draw the progress display (it is drawn only when stderr is a terminal and TERM is not dumb)"},
		&cli.StringFlag{Name: "docker-config", Usage: "Docker config.json with registry credentials (default: $DOCKER_CONFIG or ~/.docker/config.json, and credential helpers)"},
	}
}

// shardFlag is --shard K/N for the commands that work on plan entries
// (plan, sync, export, inventory, verify, prune); setup applies it.
func shardFlag() cli.Flag {
	return &cli.StringFlag{Name: "shard", Usage: "work on shard K of N (K/N, K from 0; e.g. --shard $(JOB_COMPLETION_INDEX)/4): the plan entries whose address hashes to K; own run lock, reports labelled"}
}

// env is what every command builds from the common flags.
type env struct {
	// cfg is the plan, already restricted to shard.
	cfg    *config.Config
	shard  config.Shard
	logger *slog.Logger
	policy provenance.Policy
	term   terminal
	screen *screen // stderr on a terminal; nil otherwise
	// creds is where credentials are looked up: the process environment.
	creds credEnv
}

func setup(c *cli.Context) (*env, error) {
	e, err := setupLogging(c)
	if err != nil {
		return nil, err
	}
	if err := e.loadPlan(c); err != nil {
		return nil, err
	}
	return e, nil
}

// setupLogging builds the stderr logger, a readable one on a terminal
// unless --log-format was given, for a command that may run without a
// plan file (scan); loadPlan completes the env.
func setupLogging(c *cli.Context) (*env, error) {
	e := &env{term: detectTerminal(c.App.ErrWriter, os.Getenv), creds: processCredEnv()}
	var logTo io.Writer = c.App.ErrWriter
	format := c.String("log-format")
	if e.term.tty {
		e.screen = newScreen(c.App.ErrWriter, e.term)
		logTo = e.screen
		if !c.IsSet("log-format") {
			format = "human"
		}
	}
	logger, err := newLogger(logTo, format, c.String("log-level"), e.term.color)
	if err != nil {
		return nil, cli.Exit(err.Error(), exitFailed)
	}
	e.logger = logger
	return e, nil
}

// loadPlan reads the plan file (-c) and the trust policy it pins.
func (e *env) loadPlan(c *cli.Context) error {
	cfg, err := config.Load(c.String("config"))
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	// --shard exists on the commands that shard (plan, sync, export,
	// inventory, verify, prune); elsewhere it reads as "".
	shard, err := config.ParseShard(c.String("shard"))
	if err != nil {
		return cli.Exit("--shard: "+err.Error(), exitFailed)
	}
	if shard.N > 0 {
		e.logger = e.logger.With("shard", shard.String())
		cfg = cfg.Shard(shard)
	}
	e.cfg, e.shard = cfg, shard
	if e.policy, err = trustPolicy(cfg); err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	return nil
}

// newLogger builds the stderr logger: "text" and "json" are the machine
// formats (cron, log shippers); "human" is for a terminal, chosen when
// --log-format was not given.
func newLogger(w io.Writer, format, level string, color bool) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "human":
		return slog.New(newHumanHandler(w, lv, color)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func userAgent() string { return "tofu-oci-mirror/" + toolVersion() }

func (e *env) upstreamClient() (*upstream.Client, error) {
	hosts := map[string]map[string]string{}
	for h, o := range e.cfg.Upstream.Hosts {
		hosts[h] = o.Services
	}
	opts := []upstream.Option{
		upstream.WithLogger(e.logger),
		upstream.WithUserAgent(userAgent()),
		upstream.WithHostServices(hosts),
		upstream.WithSignaturePolicy(e.policy.Signatures),
		upstream.WithReleaseCheck(e.policy.ReleaseCheck()),
	}
	if e.cfg.Upstream.CAFile != "" {
		opts = append(opts, upstream.WithCAFile(e.cfg.Upstream.CAFile))
	}
	opts = append(opts, upstream.WithTokens(findUpstreamTokens(e.creds, e.logger).lookup))
	if tok := e.creds.getenv("GITHUB_TOKEN"); tok != "" {
		opts = append(opts, upstream.WithGitHubToken(tok))
	}
	return upstream.New(opts...)
}

// trustPolicy is what the plan's trust section and OpenTofu's environment
// variables pin; the connected side (sync, export) and verify also trust
// the keys upstream serves (or the registry stores) when none is pinned,
// and OpenTofu's registry.opentofu.org exception. Import decides per
// bundle (see bundle.ImportOptions).
func trustPolicy(cfg *config.Config) (provenance.Policy, error) {
	p, err := provenance.FromConfig(cfg.Trust, upstream.SignaturePolicyFromEnv(os.Getenv))
	if err != nil {
		return p, fmt.Errorf("%s: %w", cfg.Path, err)
	}
	p.CarriedKeysTrusted, p.OpenTofuException = true, true
	return p, nil
}

// target opens the plan's target; extra options come after the common ones.
func (e *env) target(c *cli.Context, extra ...target.Option) (*target.Target, error) {
	// regclient lets 3 requests reach a registry at once unless told: a
	// (streamed) upload per transfer slot, the metadata calls beside them,
	// and two more so manifests and existence checks do not queue behind
	// the uploads (import: --concurrency + 2).
	requests := c.Int("concurrency") + c.Int("metadata-concurrency") + 2
	opts := []target.Option{target.WithLogger(e.logger), target.WithUserAgent(userAgent()), target.WithRequestConcurrency(requests)}
	if p := c.String("docker-config"); p != "" {
		opts = append(opts, target.WithDockerConfig(p))
	} else if files := registryAuthFiles(e.creds); len(files) > 0 {
		e.logger.Debug("registry credentials", "files", strings.Join(files, ","))
		opts = append(opts, target.WithRegistryAuthFiles(files...))
	}
	return target.Open(e.cfg.Target, append(opts, extra...)...)
}

// engineOptions are the engine settings every command shares; progress
// may be nil.
func (e *env) engineOptions(c *cli.Context, progress func(item.Event)) []engine.Option {
	opts := []engine.Option{
		engine.WithConcurrency(c.Int("concurrency")),
		engine.WithMetadataConcurrency(c.Int("metadata-concurrency")),
		engine.WithSpoolDir(c.String("spool-dir")),
		engine.WithLogger(e.logger),
	}
	modOpts := []modsource.Option{modsource.WithGitHubToken(e.creds.getenv("GITHUB_TOKEN")), modsource.WithNetrc(netrcPath(e.creds.getenv))}
	// git does not read SSL_CERT_FILE or our upstream.ca_file: hand it a
	// bundle of both, so git sources work behind a TLS-intercepting proxy.
	bundle, err := gitCABundle(e.creds, e.cfg.Upstream.CAFile, c.String("spool-dir"))
	if err != nil {
		e.logger.Warn("git sources use git's own CA roots", "error", err)
	}
	if bundle != "" {
		if bundle != e.creds.getenv("SSL_CERT_FILE") {
			onExit(c, func() { os.RemoveAll(filepath.Dir(bundle)) })
		}
		modOpts = append(modOpts, modsource.WithGitCAFile(bundle))
	}
	opts = append(opts, engine.WithModuleSourceOptions(modOpts...))
	if progress != nil {
		opts = append(opts, engine.WithProgress(progress))
	}
	return opts
}

// plan computes the plan against the live target, with an engine ready to
// execute it.
func (e *env) plan(c *cli.Context, progress func(item.Event)) (*engine.Plan, *engine.Engine, *target.Target, error) {
	up, err := e.upstreamClient()
	if err != nil {
		return nil, nil, nil, cli.Exit(err.Error(), exitFailed)
	}
	tg, err := e.target(c)
	if err != nil {
		return nil, nil, nil, cli.Exit(err.Error(), exitFailed)
	}
	eng := engine.New(up, tg, tg, e.engineOptions(c, progress)...)
	return eng.Plan(c.Context, e.cfg, tg.String()), eng, tg, nil
}

// netrcPath is the .netrc OpenTofu's getter reads for module archives:
// $NETRC, else ~/.netrc.
func netrcPath(getenv func(string) string) string {
	if p := getenv("NETRC"); p != "" {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".netrc")
	}
	return ""
}

// onExit runs f when the command line finishes (see run).
func onExit(c *cli.Context, f func()) {
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	fs, _ := c.App.Metadata[exitFuncsKey].([]func())
	c.App.Metadata[exitFuncsKey] = append(fs, f)
}

// exitFuncsKey holds the onExit functions in the App's Metadata.
const exitFuncsKey = "exit-funcs"

func concurrencyFlag() cli.Flag {
	return &cli.IntFlag{Name: "concurrency", Value: 4, Usage: "registry operations at once"}
}

// transferConcurrencyFlag is --concurrency of the commands that download
// packages: over an internet link each transfer's connection carries a
// share of the bandwidth, so the default is chosen from bench/RESULTS.md's
// table at 1, 4, 8 and 16.
func transferConcurrencyFlag() cli.Flag {
	return &cli.IntFlag{Name: "concurrency", Value: engine.DefaultConcurrency, Usage: "packages transferred at once, each over its own connection"}
}

// metadataConcurrencyFlag bounds the small calls whose cost is the round
// trip: versions lists, download answers, SHA256SUMS, tag lists.
func metadataConcurrencyFlag() cli.Flag {
	return &cli.IntFlag{Name: "metadata-concurrency", Value: engine.DefaultMetadataConcurrency,
		Usage: "entries planned, and download answers and SHA256SUMS asked for, at once"}
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func joinOr(items []string, empty string) string {
	if len(items) == 0 {
		return empty
	}
	return strings.Join(items, ",")
}

func spoolDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "spool-dir", Usage: "where packages wait between download and upload (default: system temp dir)"}
}

func outputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table or json"}
}

// outputFormat reads --output: "table" for people, "json" for machines.
func outputFormat(c *cli.Context) (string, error) {
	format := c.String("output")
	if format != "table" && format != "json" {
		return "", cli.Exit(fmt.Sprintf("--output %q: want table or json", format), exitFailed)
	}
	return format, nil
}

// render writes v as indented JSON, or draws the table.
func render(out io.Writer, format string, v any, table func(io.Writer)) error {
	if format != "json" {
		table(out)
		return nil
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	return nil
}
