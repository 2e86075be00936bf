package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync"
)

func syncCommand() *cli.Command {
	return &cli.Command{
		Name:  "sync",
		Usage: "copy what the target lacks: verified provider packages, in the layout OpenTofu reads",
		Flags: append(append(commonFlags(),
			concurrencyFlag(),
			spoolDirFlag(),
			lockFlag(),
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
	plan, tg, up, err := e.plan(c)
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
	res := e.executor(c, up, tg, progress).Execute(c.Context, plan)
	finish()
	printSummary(c, "Sync", res)
	renderModuleSources(c.App.Writer, res)
	return finishRun(c, e, "sync", tg.String(), res, res.Err())
}

// finishRun writes the reports and turns the run's outcome into an exit code.
func finishRun(c *cli.Context, e *env, command, target string, res *sync.Result, runErr error) error {
	if c.Context.Err() != nil && runErr != nil {
		runErr = fmt.Errorf("%w: %w", sync.ErrInterrupted, runErr)
	}
	if err := writeReports(c, command, target, res, runErr); err != nil {
		e.logger.Error(err.Error())
		if runErr == nil {
			runErr = err
		}
	}
	if runErr != nil {
		return cli.Exit(fmt.Sprintf("%d of %d items not in place:\n%v", res.Count(sync.ItemFailed)+res.Count(sync.ItemConflict), len(res.Items), runErr), exitFailed)
	}
	return nil
}

// progressReporter draws a byte counter on a terminal and logs each item
// that changed; finish clears the bar.
func progressReporter(c *cli.Context, logger *slog.Logger, active bool, what string) (func(sync.Event), func()) {
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
	report := func(ev sync.Event) {
		if bar != nil && ev.Bytes > 0 {
			_ = bar.Add64(ev.Bytes)
		}
		if it := ev.Item; it != nil && it.State != sync.ItemUnchanged {
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
func printSummary(c *cli.Context, what string, res *sync.Result) {
	down, upBytes := res.Bytes()
	fmt.Fprintf(c.App.Writer, "%s: %d copied, %d unchanged, %d failed, %d conflicts; %s downloaded, %s uploaded in %s.\n", what,
		res.Count(sync.ItemDone), res.Count(sync.ItemUnchanged), res.Count(sync.ItemFailed), res.Count(sync.ItemConflict),
		humanBytes(down), humanBytes(upBytes), res.End.Sub(res.Start).Round(time.Millisecond))
}
func logItem(l *slog.Logger, it *sync.ItemResult) {
	attrs := []any{it.Kind, it.Address, "version", it.Version, "state", it.State}
	if len(it.Platforms) > 0 {
		attrs = append(attrs, "platforms", it.Platforms)
	}
	if it.Uploaded > 0 {
		attrs = append(attrs, "uploaded", humanBytes(it.Uploaded))
	}
	for _, w := range it.Warnings {
		l.Warn(w, it.Kind, it.Address, "version", it.Version)
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
