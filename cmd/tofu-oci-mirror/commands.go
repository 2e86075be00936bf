package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// examples are the one-line examples each command's --help shows.
var examples = map[string]string{
	"plan":        "tofu-oci-mirror plan -c mirror.yaml --detailed-exitcode",
	"sync":        "tofu-oci-mirror sync -c mirror.yaml --report /var/lib/tofu-oci-mirror/report.json",
	"verify":      "tofu-oci-mirror verify -c mirror.yaml",
	"doctor":      "tofu-oci-mirror doctor -c mirror.yaml --output json",
	"tofurc":      "tofu-oci-mirror tofurc -c mirror.yaml > ~/.tofurc",
	"inventory":   "tofu-oci-mirror inventory -c mirror.yaml -o inventory.json",
	"export":      "tofu-oci-mirror export -c mirror.yaml --baseline inventory.json --sign-key signer.key.asc -o bundle.tar",
	"import":      "tofu-oci-mirror import -c mirror.yaml bundle.tar",
	"lock":        "tofu-oci-mirror lock -c mirror.yaml --platform linux_amd64 --platform darwin_arm64 ./infra",
	"scan":        "tofu-oci-mirror scan --check -c mirror.yaml ./infra",
	"keys":        "tofu-oci-mirror keys export -c mirror.yaml keys/",
	"keys export": "tofu-oci-mirror keys export -c mirror.yaml keys/",
	"prune":       "tofu-oci-mirror prune -c mirror.yaml --apply --shard 0/4",
	"version":     "tofu-oci-mirror version",
}

func init() {
	// The commands' Description holds their example (withExamples).
	cli.CommandHelpTemplate = strings.Replace(cli.CommandHelpTemplate, "DESCRIPTION:", "EXAMPLE:", 1)
	cli.SubcommandHelpTemplate = strings.Replace(cli.SubcommandHelpTemplate, "DESCRIPTION:", "EXAMPLE:", 1)
}

// withExamples puts each command's example (and its subcommands',
// "keys export") where its help shows it.
func withExamples(cmds []*cli.Command) []*cli.Command {
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			if ex, ok := examples[prefix+c.Name]; ok && c.Description == "" {
				c.Description = ex
			}
			walk(prefix+c.Name+" ", c.Subcommands)
		}
	}
	walk("", cmds)
	return cmds
}

// unknownCommand answers a command line whose command does not exist
// (also "help NAME", and a subcommand: "keys exprot"): it names it,
// suggests the closest command and lists them, with exit code 1.
// urfave/cli would say "No help topic" and exit 3, the code that tells
// cron another run holds the lock.
func unknownCommand(app *cli.App, args []string, stderr io.Writer) (int, bool) {
	rest := args[min(1, len(args)):]
	cmds, parent := app.Commands, ""
	for len(rest) > 0 {
		if isHelp(rest[0]) {
			rest = rest[1:]
			continue
		}
		name := rest[0]
		if strings.HasPrefix(name, "-") {
			return 0, false
		}
		var found *cli.Command
		for _, c := range cmds {
			if c.HasName(name) {
				found = c
			}
		}
		if found == nil {
			reportUnknown(stderr, parent, name, cmds)
			return exitFailed, true
		}
		if len(found.Subcommands) == 0 {
			return 0, false
		}
		cmds, parent, rest = found.Subcommands, parent+found.Name+" ", rest[1:]
	}
	return 0, false
}

func isHelp(arg string) bool { return arg == "help" || arg == "h" }

// reportUnknown says name is not one of cmds (the subcommands of parent,
// "" for the top level), suggests the closest and lists them.
func reportUnknown(stderr io.Writer, parent, name string, cmds []*cli.Command) {
	var names []string
	best, bestDist := "", -1
	for _, c := range cmds {
		names = append(names, c.Name)
		if d := editDistance(strings.ToLower(name), c.Name); bestDist < 0 || d < bestDist {
			best, bestDist = c.Name, d
		}
	}
	fmt.Fprintf(stderr, "tofu-oci-mirror: unknown command %q; did you mean %q?\n", parent+name, parent+best)
	fmt.Fprintf(stderr, "commands: %s (tofu-oci-mirror %s--help tells more)\n", strings.Join(names, ", "), parent)
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours ("lokc" is one from "lock").
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
