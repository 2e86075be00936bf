package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/scan"
)

func scanCommand() *cli.Command {
	return &cli.Command{
		Name:      "scan",
		Usage:     "list the providers and modules configurations need (plan-file syntax); --check: exit 1 if the target lacks any",
		ArgsUsage: "DIR...",
		Flags: append(commonFlags(),
			&cli.BoolFlag{Name: "check", Usage: "compare with the target of the plan (-c) and list what it lacks"},
			&cli.StringSliceFlag{Name: "platform", Usage: "with --check: OS_ARCH every locked version must be mirrored for (repeatable; default: the platforms the lock files' h1: hashes were made on)"},
			spoolDirFlag(),
		),
		Action: runScan,
	}
}

func runScan(c *cli.Context) error {
	dirs := c.Args().Slice()
	if len(dirs) == 0 {
		return cli.Exit("scan: name at least one configuration directory", exitFailed)
	}
	logger, err := newLogger(c.App.ErrWriter, c.String("log-format"), c.String("log-level"))
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	found := scan.Walk(dirs...)
	for _, p := range found.Problems {
		logger.Error("scan", "problem", p.String())
	}
	if !c.Bool("check") {
		providers, modules := found.PlanEntries()
		if err := scan.WritePlan(c.App.Writer, providers, modules); err != nil {
			return err
		}
		if n := len(found.Problems); n > 0 {
			return cli.Exit(fmt.Sprintf("scan: %d file problem(s); the entries above leave them out", n), exitFailed)
		}
		return nil
	}
	e, err := setup(c)
	if err != nil {
		return err
	}
	tg, err := e.target(c)
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	platforms, err := platformFlags(c)
	if err != nil {
		return cli.Exit("scan: "+err.Error(), exitFailed)
	}
	missing, err := scan.Check(c.Context, tg, found, scan.Repositories{
		Provider: providerRepository(e.cfg),
		Module: func(a config.ModuleAddr) (string, error) {
			return config.RenderModuleRepository(e.cfg.Target.ModulesRepository, a)
		},
	}, scan.CheckOptions{Platforms: platforms, SpoolDir: c.String("spool-dir"), Policy: e.policy})
	if err != nil {
		return cli.Exit("scan: "+err.Error(), exitFailed)
	}
	out := c.App.Writer
	for _, m := range missing {
		fmt.Fprintf(out, "missing: %s\n", m)
	}
	if len(found.Locked) > 0 && !e.policy.Pinned() {
		fmt.Fprintln(out, unpinnedKeysNote)
	}
	fmt.Fprintf(out, "Scan: %d provider requirement(s), %d module call(s), %d locked version(s); %d missing from %s, %d file problem(s).\n",
		len(found.Providers), len(found.Modules), len(found.Locked), len(missing), tg, len(found.Problems))
	if len(missing) > 0 || len(found.Problems) > 0 {
		return cli.Exit("", exitFailed)
	}
	return nil
}
