package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/prune"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "list (with --apply: delete) the version tags in the plan's repositories that the plan no longer selects",
		Flags: append(commonFlags(),
			&cli.BoolFlag{Name: "apply", Usage: "delete them (tag, index, platform manifests, provenance); without it, only list"},
			&cli.BoolFlag{Name: "detailed-exitcode", Usage: "exit 2 when something is left to prune (without --apply: anything listed)"},
			outputFlag(),
			shardFlag(),
			concurrencyFlag(),
			lockFlag(),
		),
		Action: runPrune,
	}
}

func runPrune(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
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
	rep, err := prune.Run(c.Context, e.cfg, tg,
		prune.WithApply(c.Bool("apply")),
		prune.WithConcurrency(c.Int("concurrency")),
		prune.WithLogger(e.logger),
	)
	if errors.Is(err, prune.ErrNoEntries) {
		return cli.Exit(err.Error(), exitFailed)
	}
	if rep != nil {
		if rerr := render(c.App.Writer, format, rep, func(out io.Writer) { renderPrune(out, tg.String(), rep) }); rerr != nil {
			return rerr
		}
	}
	if errors.Is(err, target.ErrDeleteForbidden) {
		return cli.Exit(fmt.Sprintf("prune: %s forbids deletes, nothing more was deleted; enable deletes (distribution: storage.delete.enabled: true, REGISTRY_STORAGE_DELETE_ENABLED=true) or grant the credentials delete rights: %v", tg, err), exitFailed)
	}
	if err != nil {
		return cli.Exit("prune: "+err.Error(), exitFailed)
	}
	if c.Bool("detailed-exitcode") && rep.Count(prune.Listed) > 0 {
		return cli.Exit("", exitPending)
	}
	return nil
}

// renderPrune writes one line per candidate, then what happens to blobs.
func renderPrune(out io.Writer, target string, rep *prune.Report) {
	fmt.Fprintf(out, "Target: %s\n\n", target)
	if len(rep.Candidates) > 0 {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ADDRESS\tVERSION\tTAG\tSTATE\tWHY")
		for _, cd := range rep.Candidates {
			why := cd.Reason
			if cd.Detail != "" {
				why += "; " + cd.Detail
			}
			if cd.Err != nil {
				why += "; " + cd.Err.Error()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s:%s\t%s\t%s\n", cd.Address, orDash(cd.Version), cd.Repository, cd.Tag, cd.State, why)
		}
		_ = tw.Flush()
		fmt.Fprintln(out)
	}
	if rep.Applied {
		fmt.Fprintf(out, "Prune: %d deleted, %d kept, %d failed (%d DELETE requests). Blob space comes back with the registry's own garbage collection (distribution: registry garbage-collect).\n",
			rep.Count(prune.Deleted), rep.Count(prune.Kept), rep.Count(prune.Failed), rep.Deletes)
		return
	}
	fmt.Fprintf(out, "Prune: %d to delete, %d kept; nothing deleted: run with --apply to delete. Blob space comes back with the registry's own garbage collection afterwards.\n",
		rep.Count(prune.Listed), rep.Count(prune.Kept))
}
