package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/engine"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
)

// renderModulePlan writes the modules of a plan as a table, one line per
// version with the source line people paste into their module blocks,
// then the warnings (dependencies the plan lacks) and a summary. It writes
// nothing for a plan without modules.
func renderModulePlan(out io.Writer, plan *engine.Plan) {
	if len(plan.Modules) == 0 {
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tVERSION\tSTATE\tSOURCE-LINE")
	var warnings []string
	for _, mp := range plan.Modules {
		if mp.Err != nil {
			fmt.Fprintf(tw, "%s\t-\terror\t%s\n", mp.Address, mp.Err)
			continue
		}
		for _, w := range mp.Warnings {
			warnings = append(warnings, mp.Address+": "+w)
		}
		for _, v := range mp.Versions {
			state, detail := string(v.State), engine.ModuleSourceLine(v.OCISource)
			switch {
			case v.Err != nil:
				state, detail = "error", v.Err.Error()
			case v.State == item.Conflict:
				detail = v.Detail
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", mp.Address, v.Version, state, detail)
		}
	}
	_ = tw.Flush()
	if len(warnings) > 0 {
		fmt.Fprintln(out, "\nModule warnings:")
		for _, w := range warnings {
			fmt.Fprintln(out, "  -", w)
		}
	}
	n := plan.Count(item.Module)
	fmt.Fprintf(out, "\nModules: %s to copy, %s complete, %s, %s.\n",
		plural(n.Pending, "version"), plural(n.Complete, "version"), plural(n.Conflicts, "conflict"), plural(n.Errors, "error"))
}

// renderModuleSources writes, after a sync, the source line of every
// module version now in place, and the dependencies the plan lacks.
func renderModuleSources(out io.Writer, res *item.Run) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	var warnings []string
	header := false
	// Items arrive in completion order; people read them sorted.
	modules := slices.Clone(res.Items)
	slices.SortStableFunc(modules, func(a, b item.Result) int {
		return cmp.Or(strings.Compare(a.Address, b.Address), strings.Compare(a.Version, b.Version))
	})
	for _, it := range modules {
		if it.Kind != item.Module || it.Source == "" {
			continue
		}
		if !header {
			fmt.Fprintln(tw, "MODULE\tVERSION\tSOURCE-LINE")
			header = true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", it.Address, it.Version, engine.ModuleSourceLine(it.Source))
		for _, w := range it.Warnings {
			warnings = append(warnings, it.Address+": "+w)
		}
	}
	_ = tw.Flush()
	if len(warnings) > 0 {
		fmt.Fprintln(out, "\nModule warnings:")
		for _, w := range warnings {
			fmt.Fprintln(out, "  -", w)
		}
	}
}
