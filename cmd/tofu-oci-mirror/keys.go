package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/provenance"
)

func keysCommand() *cli.Command {
	return &cli.Command{
		Name:  "keys",
		Usage: "manage the provider signing keys the inside pins (trust.provider_keys)",
		Subcommands: []*cli.Command{{
			Name:      "export",
			Usage:     "write the signing keys upstream serves for the plan's providers, in the trust.provider_keys layout (connected side)",
			ArgsUsage: "DIR",
			Flags:     append(commonFlags(), outputFlag()),
			Action:    runKeysExport,
		}},
	}
}

func runKeysExport(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("keys export takes one argument: the directory to write the keys to", exitFailed)
	}
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	e, err := setup(c)
	if err != nil {
		return err
	}
	up, err := e.upstreamClient()
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	dir := c.Args().First()
	keys, err := provenance.ExportKeys(c.Context, up, e.cfg, dir)
	if rerr := render(c.App.Writer, format, keys, func(out io.Writer) { renderKeys(out, dir, keys) }); rerr != nil {
		return rerr
	}
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	return nil
}

func renderKeys(out io.Writer, dir string, keys []provenance.ExportedKey) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tKEY ID\tFILE\tSIGNS")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Namespace, k.KeyID, k.File, joinOr(k.Providers, "-"))
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "\n%s written under %s. Review them (compare the key ids with what each provider's authors publish), carry the directory across once, and set trust.provider_keys to it.\n",
		plural(len(keys), "key"), dir)
}
