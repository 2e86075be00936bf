package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/lockfile"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/scan"
)

func lockCommand() *cli.Command {
	return &cli.Command{
		Name:      "lock",
		Usage:     "write DIR/.terraform.lock.hcl with every platform's hashes, from the target alone",
		ArgsUsage: "[DIR]",
		Flags: append(commonFlags(),
			&cli.StringSliceFlag{Name: "platform", Usage: "OS_ARCH to hash (repeatable; default: every platform the mirror holds)"},
			&cli.BoolFlag{Name: "upgrade", Usage: "select the newest allowed version even when the locked one is still allowed"},
			spoolDirFlag(),
			&cli.IntFlag{Name: "concurrency", Value: 4, Usage: "zips of one provider version downloaded and hashed at once"},
		),
		Action: runLockFile,
	}
}

func runLockFile(c *cli.Context) error {
	if c.NArg() > 1 {
		return cli.Exit("lock: at most one DIR", exitFailed)
	}
	dir := c.Args().First()
	if dir == "" {
		dir = "."
	}
	platforms, err := platformFlags(c)
	if err != nil {
		return cli.Exit("lock: "+err.Error(), exitFailed)
	}
	e, err := setup(c)
	if err != nil {
		return err
	}
	found := scan.Configuration(dir)
	for _, p := range found.Problems {
		e.logger.Error("configuration", "problem", p.String())
	}
	if len(found.Problems) > 0 {
		return cli.Exit(fmt.Sprintf("lock: %d problem(s) reading the configuration in %s", len(found.Problems), dir), exitFailed)
	}
	reqs, err := found.Requirements()
	if err != nil {
		return cli.Exit("lock: "+err.Error(), exitFailed)
	}
	path := filepath.Join(dir, lockfile.FileName)
	old, err := lockfile.Read(path)
	if err != nil {
		return cli.Exit("lock: "+err.Error(), exitFailed)
	}
	tg, err := e.target(c)
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	res, err := lockfile.Update(c.Context, tg, old, reqs, lockfile.Options{
		Platforms:   platforms,
		Upgrade:     c.Bool("upgrade"),
		Repository:  providerRepository(e.cfg),
		SpoolDir:    c.String("spool-dir"),
		Concurrency: c.Int("concurrency"),
		Policy:      e.policy,
	})
	if err != nil {
		var lines []string
		for _, line := range strings.Split(err.Error(), "\n") {
			lines = append(lines, "  "+line)
		}
		return cli.Exit("lock: nothing written; from "+tg.String()+":\n"+strings.Join(lines, "\n"), exitFailed)
	}
	for _, w := range res.Warnings {
		e.logger.Warn(w)
	}
	if err := lockfile.WriteFile(path, res.File.Bytes()); err != nil {
		return cli.Exit("lock: "+err.Error(), exitFailed)
	}
	out := c.App.Writer
	signed := false
	for _, ch := range res.Changes {
		signed = signed || ch.Signed
		from := "new"
		if ch.Old != "" && ch.Old != ch.New {
			from = "was " + ch.Old
		} else if ch.Old != "" {
			from = "kept"
		}
		zh := "zh: from the signed SHA256SUMS"
		if !ch.Signed {
			zh = "zh: unsigned, held zips only"
		}
		fmt.Fprintf(out, "%s %s (%s): h1: for %s; %s\n", ch.Address, ch.New, from, strings.Join(ch.Platforms, ", "), zh)
	}
	if signed && !e.policy.Pinned() {
		fmt.Fprintln(out, unpinnedKeysNote)
	}
	fmt.Fprintf(out, "Wrote %s\n", path)
	return nil
}

// unpinnedKeysNote is printed, as verify prints it, when a stored
// SHA256SUMS was re-verified with the key stored next to it because the
// plan pins none.
const unpinnedKeysNote = "Signing keys: not pinned; each provenance was checked against the key stored next to it. Set trust.provider_keys to check against keys you pinned."

// platformFlags reads the repeatable (or comma-separated) --platform.
func platformFlags(c *cli.Context) ([]string, error) {
	var platforms []string
	for _, p := range c.StringSlice("platform") {
		for _, s := range strings.Split(p, ",") {
			pl, err := config.ParsePlatform(strings.TrimSpace(s))
			if err != nil {
				return nil, fmt.Errorf("--platform: %w", err)
			}
			platforms = append(platforms, pl.String())
		}
	}
	return platforms, nil
}

// providerRepository renders a provider's repository from the plan's
// template.
func providerRepository(cfg *config.Config) func(string) (string, error) {
	return func(address string) (string, error) {
		a, err := config.ParseProviderAddr(address)
		if err != nil {
			return "", err
		}
		if a.String() != address {
			return "", errors.New("not a normalised provider address: " + address)
		}
		return config.RenderProviderRepository(cfg.Target.ProvidersRepository, a)
	}
}
