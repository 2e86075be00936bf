package main

import (
	"fmt"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"

	"github.com/urfave/cli/v2"
)

func syncCommand() *cli.Command {
	return &cli.Command{
		Name:  "sync",
		Usage: "copy what the target lacks: verified provider packages, in the layout OpenTofu reads",
		Flags: append(append(commonFlags(),
			transferConcurrencyFlag(),
			metadataConcurrencyFlag(),
			spoolDirFlag(),
			lockFlag(),
			shardFlag(),
		), reportFlags()...),
		Action: runSync,
	}
}

func runSync(c *cli.Context) error {
	e, err := setup(c)
	if err != nil {
		return err
	}
	lock, err := acquireLock(c)
	if err != nil {
		return err
	}
	defer lock.release()
	// The display starts now: planning (discovery, retries) can take a while.
	progress, finish := progressReporter(c, e, "Syncing", "planning", "copied")
	defer finish()
	plan, eng, tg, err := e.plan(c, progress)
	if err != nil {
		return err
	}
	for _, pp := range plan.Providers {
		for _, w := range pp.Warnings {
			e.logger.Warn(w, "provider", pp.Address)
		}
	}
	for _, mp := range plan.Modules {
		for _, w := range mp.Warnings {
			e.logger.Warn(w, "module", mp.Address)
		}
	}
	if _, human := e.logger.Handler().(*humanHandler); human {
		e.logger.Info(fmt.Sprintf("plan: %s to copy into %s, %s", plural(plan.Pending(), "version"), plan.Target, plural(plan.Conflicts(), "conflict")))
	} else {
		e.logger.Info("plan", "target", plan.Target, "pending", plan.Pending(), "conflicts", plan.Conflicts())
	}

	res := eng.Execute(c.Context, plan)
	finish()
	printSummary(c, "Sync", res)
	renderModuleSources(c.App.Writer, res)
	return finishRun(c, e, "sync", tg.String(), res, res.Err())
}

// finishRun writes the reports and turns the run's outcome into an exit code.
func finishRun(c *cli.Context, e *env, command, target string, res *item.Run, runErr error) error {
	if c.Context.Err() != nil && runErr != nil {
		runErr = fmt.Errorf("%w: %w", item.ErrInterrupted, runErr)
	}
	if err := writeReports(c, command, target, res, runErr); err != nil {
		e.logger.Error(err.Error())
		if runErr == nil {
			runErr = err
		}
	}
	if runErr != nil {
		return cli.Exit(fmt.Sprintf("%d of %d items not in place:\n%v", res.Count(item.Failed)+res.Count(item.Conflicted), len(res.Items), runErr), exitFailed)
	}
	return nil
}

// progressReporter draws the progress display on a terminal (unless
// --no-progress or TERM=dumb) and logs each item that changed; finish
// clears the display (calling it again does nothing). verb names the work
// ("Syncing"), before what happens until the engine starts ("planning"),
// done what happened to an item ("copied").
func progressReporter(c *cli.Context, e *env, verb, before, done string) (func(item.Event), func()) {
	var t *tracker
	stop := func() {}
	if e.screen != nil && !e.term.dumb && !c.Bool("no-progress") {
		t = newTracker(verb, before, runStart(c))
		stop = e.screen.show(func(w, h int) []string {
			now := time.Now()
			return t.frame(now, w, h, spinFrame(now))
		}, 100*time.Millisecond)
	}
	report := func(ev item.Event) {
		if t != nil {
			t.handle(ev, time.Now())
		}
		if it := ev.Item; it != nil && it.State != item.Unchanged {
			logItem(e.logger, it, done)
		}
	}
	return report, stop
}

// runStart is when this command line started, so a summary's duration
// covers the whole run (discovery, retries, planning), not only the copy.
func runStart(c *cli.Context) time.Time {
	if t, ok := c.App.Metadata["start"].(time.Time); ok {
		return t
	}
	return time.Now()
}

// printSummary writes where a run kept provider provenance, then its
// outcome, to stdout.
func printSummary(c *cli.Context, what string, res *item.Run) {
	if res.Provenance != "" {
		// Before the summary, which stays the last line.
		fmt.Fprintf(c.App.Writer, "Provenance: %s.\n", res.Provenance)
	}
	down, upBytes := res.Bytes()
	fmt.Fprintf(c.App.Writer, "%s: %d copied, %d unchanged, %d failed, %d conflicts; %s downloaded, %s uploaded in %s.\n", what,
		res.Count(item.Done), res.Count(item.Unchanged), res.Count(item.Failed), res.Count(item.Conflicted),
		humanBytes(down), humanBytes(upBytes), time.Since(runStart(c)).Round(time.Millisecond))
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
