package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// examples are the one-line examples each command's --help shows.
var examples = map[string]string{
	"plan":      "tofu-oci-mirror plan -c mirror.yaml --detailed-exitcode",
	"sync":      "tofu-oci-mirror sync -c mirror.yaml --report /var/lib/tofu-oci-mirror/report.json",
	"verify":    "tofu-oci-mirror verify -c mirror.yaml",
	"tofurc":    "tofu-oci-mirror tofurc -c mirror.yaml > ~/.tofurc",
	"inventory": "tofu-oci-mirror inventory -c mirror.yaml -o inventory.json",
	"export":    "tofu-oci-mirror export -c mirror.yaml --baseline inventory.json -o bundle.tar",
	"import":    "tofu-oci-mirror import -c mirror.yaml bundle.tar",
	"version":   "tofu-oci-mirror version",
}

func init() {
	// The commands' Description holds their example (withExamples).
	cli.CommandHelpTemplate = strings.Replace(cli.CommandHelpTemplate, "DESCRIPTION:", "EXAMPLE:", 1)
}

// withExamples puts each command's example where its help shows it.
func withExamples(cmds []*cli.Command) []*cli.Command {
	for _, c := range cmds {
		if ex, ok := examples[c.Name]; ok && c.Description == "" {
			c.Description = ex
		}
	}
	return cmds
}

// unknownCommand answers a command line whose command does not exist
// (also "help NAME"): it names it, suggests the closest command and lists
// them, with exit code 1. urfave/cli would say "No help topic" and exit 3,
// the code that tells cron another run holds the lock.
func unknownCommand(app *cli.App, args []string, stderr io.Writer) (int, bool) {
	if len(args) < 2 {
		return 0, false
	}
	name := args[1]
	if (name == "help" || name == "h") && len(args) > 2 {
		name = args[2]
	} else if name == "help" || name == "h" {
		return 0, false
	}
	if strings.HasPrefix(name, "-") || app.Command(name) != nil {
		return 0, false
	}
	var names []string
	best, bestDist := "", -1
	for _, c := range app.Commands {
		names = append(names, c.Name)
		if d := editDistance(strings.ToLower(name), c.Name); bestDist < 0 || d < bestDist {
			best, bestDist = c.Name, d
		}
	}
	fmt.Fprintf(stderr, "tofu-oci-mirror: unknown command %q; did you mean %q?\n", name, best)
	fmt.Fprintf(stderr, "commands: %s (tofu-oci-mirror --help tells more)\n", strings.Join(names, ", "))
	return exitFailed, true
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
