package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/verify"

	"github.com/urfave/cli/v2"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "check that everything the plan names is in the target as OpenTofu needs it; exit 1 on any problem",
		Flags: append(commonFlags(),
			&cli.BoolFlag{Name: "deep", Usage: "also download every package and hash it (reads the whole mirror)"},
			outputFlag(),
			shardFlag(),
			concurrencyFlag(),
		),
		Action: runVerify,
	}
}

func runVerify(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	e, err := setup(c)
	if err != nil {
		return err
	}
	tg, err := e.target(c)
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	rep, err := verify.Run(c.Context, e.cfg, tg,
		verify.WithDeep(c.Bool("deep")),
		verify.WithConcurrency(c.Int("concurrency")),
		verify.WithLogger(e.logger),
		verify.WithPolicy(e.policy),
	)
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	if err := render(c.App.Writer, format, rep, func(out io.Writer) { renderVerify(out, tg.String(), rep) }); err != nil {
		return err
	}
	if n := len(rep.Problems); n > 0 {
		return cli.Exit(fmt.Sprintf("verify: %s in %s", plural(n, "problem"), tg), exitFailed)
	}
	return nil
}

// renderVerify writes one line per problem, then warnings, then the summary.
func renderVerify(out io.Writer, target string, rep *verify.Report) {
	fmt.Fprintf(out, "Target: %s\n\n", target)
	section := func(title string, ps []verify.Problem) {
		if len(ps) == 0 {
			return
		}
		fmt.Fprintln(out, title)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ADDRESS\tVERSION\tPLATFORM\tCODE\tMESSAGE")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Address, orDash(p.Version), orDash(p.Platform), p.Code, p.Message)
		}
		_ = tw.Flush()
		fmt.Fprintln(out)
	}
	section("Problems:", rep.Problems)
	section("Warnings:", rep.Warnings)
	if !rep.KeysPinned {
		fmt.Fprintln(out, "Signing keys: not pinned; each provenance was checked against the key stored next to it. Set trust.provider_keys to check against keys you pinned.")
	}
	fmt.Fprintf(out, "Verify: %s checked, %s.\n", plural(rep.Checked, "version"), plural(len(rep.Problems), "problem"))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
