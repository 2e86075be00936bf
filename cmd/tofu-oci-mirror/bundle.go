package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/provenance"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/atomicfile"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"

	"github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v2"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/bundle"
)

func inventoryCommand() *cli.Command {
	return &cli.Command{
		Name:  "inventory",
		Usage: "record what the target holds for the plan (inside the air gap), for a differential export",
		Flags: append(commonFlags(),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "-", Usage: "file to write, - for stdout"},
			shardFlag(),
		),
		Action: runInventory,
	}
}

func runInventory(c *cli.Context) error {
	e, err := setup(c)
	if err != nil {
		return err
	}
	tg, err := e.target(c)
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	inv, err := bundle.TakeInventory(c.Context, e.cfg, tg, tg.String(), toolVersion())
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	if err := writeOutput(c, c.String("output"), func(w io.Writer) error { return bundle.WriteInventory(w, inv) }); err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	n := 0
	for _, a := range inv.Artifacts {
		n += len(a.Versions)
	}
	e.logger.Info("inventory", "artifacts", len(inv.Artifacts), "versions", n, "output", c.String("output"))
	return nil
}

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write a bundle of what the inside lacks (connected side), to carry across the air gap",
		Flags: append(append(commonFlags(),
			&cli.StringFlag{Name: "baseline", Usage: "inventory.json from the inside; without it everything the plan names is exported"},
			shardFlag(),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "bundle file to write, - for stdout"},
			&cli.StringFlag{Name: "max-part-size", Usage: "split the bundle into parts of at most SIZE (e.g. 4GiB, 700MB) with a part manifest"},
			&cli.StringFlag{Name: "stage-dir", Usage: "where verified content waits until the bundle is written (default: a temp dir)"},
			&cli.StringFlag{Name: "sign-key", Usage: "sign the bundle with this ASCII-armored OpenPGP private key (passphrase from $" + signPassphraseEnv + "); writes BUNDLE.sig"},
			&cli.StringFlag{Name: "signature-output", Usage: "with --output -, where to write the bundle's signature"},
			transferConcurrencyFlag(),
			metadataConcurrencyFlag(),
			spoolDirFlag(),
		), reportFlags()...),
		Action: runExport,
	}
}

func runExport(c *cli.Context) error {
	e, err := setup(c)
	if err != nil {
		return err
	}
	output := c.String("output")
	maxPart, err := parseSize(c.String("max-part-size"))
	if err != nil {
		return cli.Exit(fmt.Sprintf("--max-part-size: %v", err), exitFailed)
	}
	if maxPart > 0 && output == "-" {
		return cli.Exit("--max-part-size needs --output FILE, not stdout", exitFailed)
	}
	signer, err := newBundleSigner(c, output)
	if err != nil {
		return err
	}
	var inv *bundle.Inventory
	var baselineDigest digest.Digest
	if p := c.String("baseline"); p != "" {
		if inv, baselineDigest, err = bundle.ReadInventory(p); err != nil {
			return cli.Exit(fmt.Sprintf("--baseline: %v", err), exitFailed)
		}
	}
	planFile, err := os.ReadFile(c.String("config"))
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	up, err := e.upstreamClient()
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	progress, finish := progressReporter(c, e, "Exporting", "planning", "exported")
	exp, err := bundle.Export(c.Context, e.cfg, inv, bundle.ExportOptions{
		ToolVersion: toolVersion(), PlanFile: planFile, BaselineDigest: baselineDigest, StageDir: c.String("stage-dir"),
		Upstream: up, Engine: e.engineOptions(c, progress),
	})
	finish()
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	defer exp.Close()
	if err := exp.Plan.Errors(); err != nil {
		e.logger.Error(err.Error())
	}
	if output == "-" {
		err = exp.WriteTar(c.App.Writer)
	} else {
		err = exp.WriteFile(output, maxPart)
	}
	if err != nil {
		return cli.Exit(fmt.Sprintf("writing the bundle: %v", err), exitFailed)
	}
	if err := signer.sign(e, exp); err != nil {
		return err
	}
	res := exp.Result
	summary := c.App.ErrWriter // stdout may be the bundle itself
	if output != "-" {
		summary = c.App.Writer
	}
	var inside int64
	for _, a := range exp.Metadata.Artifacts {
		for _, b := range a.Blobs {
			if b.Inside {
				inside += b.Size
			}
		}
	}
	fmt.Fprintf(summary, "Export: %d artifacts in the bundle (%s of content), %d already inside, %d failed, %d conflicts.\n",
		len(exp.Metadata.Artifacts), humanBytes(inside), res.Count(item.Unchanged), res.Count(item.Failed), res.Count(item.Conflicted))
	return finishRun(c, e, "export", output, res, res.Err())
}

func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "verify a bundle and publish it into the target (inside the air gap); needs no upstream access",
		ArgsUsage: "BUNDLE (a tar, its PATH.parts.json, the directory of the parts, or - for stdin)",
		Flags: append(append(commonFlags(),
			&cli.StringFlag{Name: "signature", Usage: "the bundle's detached signature (default: BUNDLE.sig next to it)"},
			&cli.BoolFlag{Name: "allow-unsigned-bundle", Usage: "import a bundle whose signature is missing or not by a key of trust.bundle_keys; its providers must then verify with pinned keys or be allowed unsigned"},
			concurrencyFlag(),
			spoolDirFlag(),
			lockFlag(),
		), reportFlags()...),
		Action: runImport,
	}
}

func runImport(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("import takes one argument: the bundle", exitFailed)
	}
	e, err := setup(c)
	if err != nil {
		return err
	}
	lock, err := acquireLock(c)
	if err != nil {
		return err
	}
	defer lock.release()
	tg, err := e.target(c)
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	var r io.ReadCloser = io.NopCloser(os.Stdin)
	if p := c.Args().First(); p != "-" {
		if r, err = bundle.OpenBundle(p); err != nil {
			return cli.Exit(err.Error(), exitFailed)
		}
	}
	defer r.Close()
	opts, err := e.importOptions(c)
	if err != nil {
		return err
	}
	progress, finish := progressReporter(c, e, "Importing", "reading the bundle", "imported")
	opts.Progress = progress
	res, err := bundle.Import(c.Context, e.cfg, tg, r, opts)
	finish()
	for i := range res.Items {
		if it := &res.Items[i]; it.State != item.Unchanged && err == nil {
			logItem(e.logger, it, "imported")
		}
	}
	printSummary(c, "Import", res)
	if err != nil {
		_ = writeReports(c, "import", tg.String(), res, err)
		return cli.Exit(fmt.Sprintf("nothing was tagged: %v", err), exitFailed)
	}
	return finishRun(c, e, "import", tg.String(), res, res.Err())
}

// bundleSigner is export's --sign-key, and where the signature goes; a
// nil one signs nothing.
type bundleSigner struct {
	key  *openpgp.Entity
	path string
}

// newBundleSigner loads --sign-key (decrypted with $TOFU_OCI_MIRROR_SIGN_PASSPHRASE)
// before any download, so a wrong passphrase fails at once.
func newBundleSigner(c *cli.Context, output string) (*bundleSigner, error) {
	p := c.String("sign-key")
	if p == "" {
		return nil, nil
	}
	s := &bundleSigner{path: c.String("signature-output")}
	if s.path == "" {
		if output == "-" {
			return nil, cli.Exit("--sign-key with --output - needs --signature-output FILE", exitFailed)
		}
		s.path = output + bundle.SignatureSuffix
	}
	key, err := bundle.LoadSigningKey(p, []byte(os.Getenv(signPassphraseEnv)))
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("--sign-key: %v", err), exitFailed)
	}
	s.key = key
	return s, nil
}

// sign writes the signature of the bundle written, atomically.
func (s *bundleSigner) sign(e *env, exp *bundle.Exported) error {
	if s == nil {
		return nil
	}
	sig, err := exp.Sign(s.key)
	if err == nil {
		err = atomicfile.WriteBytes(s.path, 0o644, sig)
	}
	if err != nil {
		return cli.Exit(fmt.Sprintf("signing the bundle: %v", err), exitFailed)
	}
	e.logger.Info("bundle signed", "key", s.key.PrimaryKey.KeyIdString(), "signature", s.path)
	return nil
}

// signPassphraseEnv holds the passphrase of export's --sign-key.
const signPassphraseEnv = "TOFU_OCI_MIRROR_SIGN_PASSPHRASE"

// importOptions reads the bundle's signature and the keys that may make
// it, and the pinned provider keys.
func (e *env) importOptions(c *cli.Context) (bundle.ImportOptions, error) {
	opts := bundle.ImportOptions{Logger: e.logger, SpoolDir: c.String("spool-dir"), Concurrency: c.Int("concurrency"),
		AllowUnsignedBundle: c.Bool("allow-unsigned-bundle")}
	policy, err := provenance.FromConfig(e.cfg.Trust, e.policy.Signatures)
	if err != nil {
		return opts, cli.Exit(fmt.Sprintf("%s: %v", e.cfg.Path, err), exitFailed)
	}
	opts.Policy = policy
	if opts.BundleKeys, err = bundle.LoadTrustedKeys(e.cfg.Trust.BundleKeys); err != nil {
		return opts, cli.Exit(fmt.Sprintf("%s: %v", e.cfg.Path, err), exitFailed)
	}
	sigPath := c.String("signature")
	if arg := c.Args().First(); sigPath == "" && arg != "-" {
		sigPath = bundle.SignaturePath(arg)
		if _, err := os.Stat(sigPath); err != nil {
			sigPath = "" // unsigned: refused below unless --allow-unsigned-bundle
		}
	}
	if sigPath != "" {
		if opts.Signature, err = os.ReadFile(sigPath); err != nil {
			return opts, cli.Exit(fmt.Sprintf("--signature: %v", err), exitFailed)
		}
	}
	return opts, nil
}

// writeOutput writes to stdout for "-", else to a file atomically.
func writeOutput(c *cli.Context, path string, write func(io.Writer) error) error {
	if path == "-" {
		return write(c.App.Writer)
	}
	return atomicfile.Write(path, 0o644, write)
}

// parseSize reads sizes like 700MB, 4GiB, 1048576; "" is 0 (no limit).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(s), strings.ToUpper(u.suffix)) {
			s, mult = strings.TrimSpace(s[:len(s)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size like 700MB or 4GiB", s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}
