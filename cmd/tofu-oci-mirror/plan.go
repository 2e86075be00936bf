package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/engine"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"

	"github.com/urfave/cli/v2"
)

func planCommand() *cli.Command {
	return &cli.Command{
		Name:  "plan",
		Usage: "show what the target lacks, without changing anything",
		Flags: append(commonFlags(),
			outputFlag(),
			shardFlag(),
			&cli.BoolFlag{Name: "detailed-exitcode", Usage: "exit 0 when nothing is to do, 2 when work is pending, 1 on error"},
			transferConcurrencyFlag(),
			metadataConcurrencyFlag(),
		),
		Action: runPlan,
	}
}

func runPlan(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	e, err := setup(c)
	if err != nil {
		return err
	}
	plan, _, _, err := e.plan(c, nil)
	if err != nil {
		return err
	}
	if err := render(c.App.Writer, format, plan, func(out io.Writer) { renderPlan(out, plan) }); err != nil {
		return err
	}
	if err := plan.Errors(); err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	if plan.Conflicts() > 0 {
		return cli.Exit(fmt.Sprintf("%s: tags hold foreign artifacts", plural(plan.Conflicts(), "conflict")), exitFailed)
	}
	if c.Bool("detailed-exitcode") && plan.Pending() > 0 {
		return cli.Exit("", exitPending)
	}
	return nil
}

// renderPlan writes the plan as tables people read: providers, then
// modules with the source line to use, then one summary line.
func renderPlan(out io.Writer, plan *engine.Plan) {
	fmt.Fprintf(out, "Target: %s\n\n", plan.Target)
	if len(plan.Providers) > 0 || len(plan.Modules) == 0 {
		renderProviderPlan(out, plan)
	}
	if len(plan.Modules) > 0 {
		if len(plan.Providers) > 0 {
			fmt.Fprintln(out)
		}
		renderModulePlan(out, plan)
	}
	n := plan.Count("")
	fmt.Fprintf(out, "\nPlan: %s to copy, %s complete, %s.\n",
		plural(n.Pending, "version"), plural(n.Complete, "version"), plural(n.Conflicts, "conflict"))
}

// renderProviderPlan writes the providers' table and warnings.
func renderProviderPlan(out io.Writer, plan *engine.Plan) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tVERSION\tSTATE\tPLATFORMS")
	var warnings []string
	for _, pp := range plan.Providers {
		if pp.Err != nil {
			fmt.Fprintf(tw, "%s\t-\terror\t%s\n", pp.Address, pp.Err)
			continue
		}
		for _, w := range pp.Warnings {
			warnings = append(warnings, pp.Address+": "+w)
		}
		for _, v := range pp.Versions {
			var detail string
			switch v.State {
			case item.Missing, item.Incomplete:
				adds := make([]string, len(v.Add))
				for i, a := range v.Add {
					adds[i] = "+" + a
				}
				detail = strings.Join(adds, " ")
				if len(v.Present) > 0 {
					detail += "  (has " + strings.Join(v.Present, ",") + ")"
				}
			case item.Conflict:
				detail = v.Detail
			default:
				detail = joinOr(v.Present, v.Detail)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", pp.Address, v.Version, v.State, detail)
		}
	}
	_ = tw.Flush()
	if len(warnings) > 0 {
		fmt.Fprintln(out, "\nWarnings:")
		for _, w := range warnings {
			fmt.Fprintln(out, "  -", w)
		}
	}
}
