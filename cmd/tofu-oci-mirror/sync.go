package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
)

func syncCommand() *cli.Command {
	return &cli.Command{
		Name:  "sync",
		Usage: "copy what the target lacks: verified provider packages, in the layout OpenTofu reads",
		Flags: append(append(commonFlags(),
			concurrencyFlag(),
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
	// The display depends on the plan; the engine reports to it through
	// this variable, set before Execute starts.
	progress := func(item.Event) {}
	plan, eng, tg, err := e.plan(c, func(ev item.Event) { progress(ev) })
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
	e.logger.Info("plan", "target", plan.Target, "pending", plan.Pending(), "conflicts", plan.Conflicts())

	progress, finish := progressReporter(c, e.logger, plan.Pending() > 0, "downloading")
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

// progressReporter draws a byte counter on a terminal and logs each item
// that changed; finish clears the bar.
func progressReporter(c *cli.Context, logger *slog.Logger, active bool, what string) (func(item.Event), func()) {
	var bar *progressbar.ProgressBar
	if showProgress(c) && active {
		bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(c.App.ErrWriter),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription(what),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionThrottle(100*time.Millisecond),
		)
	}
	report := func(ev item.Event) {
		if bar != nil && ev.Bytes > 0 {
			_ = bar.Add64(ev.Bytes)
		}
		if it := ev.Item; it != nil && it.State != item.Unchanged {
			logItem(logger, it)
		}
	}
	return report, func() {
		if bar != nil {
			_ = bar.Finish()
		}
	}
}

// printSummary writes the one-line outcome of a run to stdout.
func printSummary(c *cli.Context, what string, res *item.Run) {
	down, upBytes := res.Bytes()
	fmt.Fprintf(c.App.Writer, "%s: %d copied, %d unchanged, %d failed, %d conflicts; %s downloaded, %s uploaded in %s.\n", what,
		res.Count(item.Done), res.Count(item.Unchanged), res.Count(item.Failed), res.Count(item.Conflicted),
		humanBytes(down), humanBytes(upBytes), res.End.Sub(res.Start).Round(time.Millisecond))
}
func logItem(l *slog.Logger, it *item.Result) {
	attrs := []any{string(it.Kind), it.Address, "version", it.Version, "state", it.State}
	if len(it.Platforms) > 0 {
		attrs = append(attrs, "platforms", it.Platforms)
	}
	if it.Uploaded > 0 {
		attrs = append(attrs, "uploaded", humanBytes(it.Uploaded))
	}
	for _, w := range it.Warnings {
		l.Warn(w, string(it.Kind), it.Address, "version", it.Version)
	}
	if it.Err != nil {
		l.Error(it.Err.Error(), attrs...)
		return
	}
	l.Info("copied", attrs...)
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
