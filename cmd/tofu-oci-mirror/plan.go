package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync"
)

func planCommand() *cli.Command {
	return &cli.Command{
		Name:  "plan",
		Usage: "show what the target lacks, without changing anything",
		Flags: append(commonFlags(),
			outputFlag(),
			&cli.BoolFlag{Name: "detailed-exitcode", Usage: "exit 0 when nothing is to do, 2 when work is pending, 1 on error"},
			concurrencyFlag(),
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
	plan, _, _, err := e.plan(c)
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
func renderPlan(out io.Writer, plan *sync.Plan) {
	fmt.Fprintf(out, "Target: %s\n\n", plan.Target)
	pending, complete, conflicts := 0, 0, 0
	if len(plan.Providers) > 0 || len(plan.Modules) == 0 {
		pending, complete, conflicts = renderProviderPlan(out, plan)
	}
	if len(plan.Modules) > 0 {
		if len(plan.Providers) > 0 {
			fmt.Fprintln(out)
		}
		renderModulePlan(out, plan)
		for _, mp := range plan.Modules {
			for _, v := range mp.Versions {
				switch {
				case v.Err != nil:
				case v.State == sync.StateConflict:
					conflicts++
				case v.State.Pending():
					pending++
				default:
					complete++
				}
			}
		}
	}
	fmt.Fprintf(out, "\nPlan: %s to copy, %s complete, %s.\n",
		plural(pending, "version"), plural(complete, "version"), plural(conflicts, "conflict"))
}

// renderProviderPlan writes the providers' table and warnings, and counts states.
func renderProviderPlan(out io.Writer, plan *sync.Plan) (pending, complete, conflicts int) {
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
			case sync.StateMissing, sync.StateIncomplete:
				pending++
				adds := make([]string, len(v.Add))
				for i, a := range v.Add {
					adds[i] = "+" + a
				}
				detail = strings.Join(adds, " ")
				if len(v.Present) > 0 {
					detail += "  (has " + strings.Join(v.Present, ",") + ")"
				}
			case sync.StateConflict:
				conflicts++
				detail = v.Detail
			default:
				complete++
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
	return pending, complete, conflicts
}
