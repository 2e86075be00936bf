package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/regclient/regclient"
	rcconfig "github.com/regclient/regclient/config"
	"github.com/regclient/regclient/scheme/reg"
	"github.com/urfave/cli/v2"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/doctor"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "probe the target registry for what OpenTofu and sync need, writing only under a scratch repository; exit 1 when something needed fails",
		Flags: append(commonFlags(),
			outputFlag(),
			&cli.StringFlag{Name: "repository", Usage: "scratch repository to write under (default: the providers repository prefix + /" + doctor.ScratchName + ")"},
			&cli.Int64Flag{Name: "max-blob-size", Value: doctor.DefaultMaxBlobSize, Usage: "largest monolithic upload tried, in bytes"},
		),
		Action: runDoctor,
	}
}

func runDoctor(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	e, err := setup(c)
	if err != nil {
		return err
	}
	// A probe wants the registry's first answers: one retry, and backoffs
	// of at most a second instead of regclient's 30 after each refusal.
	tg, err := e.target(c, target.WithRegClientOptions(regclient.WithRegOpts(reg.WithRetryLimit(1), reg.WithDelay(100*time.Millisecond, time.Second))))
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	rep, err := doctor.Run(c.Context, e.cfg.Target, tg.RegClient(),
		doctor.WithRepository(c.String("repository")),
		doctor.WithMaxBlobSize(c.Int64("max-blob-size")),
		doctor.WithCredentials(findCredentials(c.String("docker-config"), tg.Host())),
		doctor.WithLogger(e.logger),
	)
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	if err := render(c.App.Writer, format, rep, func(out io.Writer) { renderDoctor(out, rep) }); err != nil {
		return err
	}
	if !rep.OK() {
		return cli.Exit(fmt.Sprintf("doctor: %s failed on %s", plural(rep.Count(doctor.Fail), "check"), rep.Target), exitFailed)
	}
	return nil
}

// findCredentials looks where regclient looks (the file given, or
// $DOCKER_CONFIG/config.json, ~/.docker/config.json and DOCKER_AUTH_CONFIG)
// for an entry for host.
func findCredentials(dockerConfig, host string) doctor.Credentials {
	source := "the Docker config ($DOCKER_CONFIG or ~/.docker/config.json)"
	var hosts []rcconfig.Host
	if dockerConfig != "" {
		source = dockerConfig
		hosts, _ = rcconfig.DockerLoadFile(dockerConfig)
	} else {
		hosts, _ = rcconfig.DockerLoad()
	}
	for _, h := range hosts {
		if h.Name != host && h.Hostname != host {
			continue
		}
		if h.CredHelper != "" {
			return doctor.Credentials{Found: true, Source: "credential helper " + h.CredHelper}
		}
		if h.User != "" || h.Pass != "" || h.Token != "" {
			return doctor.Credentials{Found: true, Source: source}
		}
	}
	return doctor.Credentials{}
}

// renderDoctor draws one row per check, then the hints, then the verdict.
func renderDoctor(out io.Writer, rep *doctor.Report) {
	fmt.Fprintf(out, "Target: %s (scratch repository %s)\n\n", rep.Target, rep.Repository)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tDETAIL")
	for _, ch := range rep.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", ch.Name, ch.Status, ch.Detail)
	}
	_ = tw.Flush()
	var hints []string
	for _, ch := range rep.Checks {
		if ch.Hint != "" {
			hints = append(hints, fmt.Sprintf("  %s: %s", ch.Name, ch.Hint))
		}
	}
	if len(hints) > 0 {
		fmt.Fprintf(out, "\nWhat to configure:\n%s\n", strings.Join(hints, "\n"))
	}
	if len(rep.Leftovers) > 0 {
		fmt.Fprintf(out, "\nLeft in %s: %s\n", rep.Repository, strings.Join(rep.Leftovers, ", "))
	}
	if rep.ProvenanceMode != "" {
		fmt.Fprintf(out, "\nProvenance: %s\n", rep.ProvenanceMode)
	}
	verdict := "everything OpenTofu needs works"
	if !rep.OK() {
		verdict = "fix the failed checks before the first sync"
	}
	fmt.Fprintf(out, "\nDoctor: %d ok, %s, %s: %s.\n", rep.Count(doctor.OK), plural(rep.Count(doctor.Warn), "warning"), plural(rep.Count(doctor.Fail), "failure"), verdict)
}
