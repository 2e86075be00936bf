package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/atomicfile"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"

	"github.com/urfave/cli/v2"
)

func reportFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "report", Usage: "write a JSON run report to FILE (atomically)"},
		&cli.StringFlag{Name: "metrics-file", Usage: "write Prometheus text metrics to FILE for node_exporter's textfile collector (atomically)"},
	}
}

// runReport is the JSON a monitoring system reads after each run.
type runReport struct {
	Tool        string `json:"tool"`
	ToolVersion string `json:"tool_version"`
	Command     string `json:"command"`
	PlanFile    string `json:"plan_file"`
	// Shard is "K/N" for a run of one shard (--shard), absent otherwise.
	Shard           string           `json:"shard,omitempty"`
	Target          string           `json:"target,omitempty"`
	Start           time.Time        `json:"start"`
	End             time.Time        `json:"end"`
	DurationSeconds float64          `json:"duration_seconds"`
	Success         bool             `json:"success"`
	Error           string           `json:"error,omitempty"`
	Summary         map[string]int64 `json:"summary"`
	// PeakRSSBytes is the process's peak resident memory (Linux's VmHWM), 0 where unknown.
	PeakRSSBytes int64         `json:"peak_rss_bytes,omitempty"`
	Items        []item.Result `json:"items"`
}

// writeReports writes --report and --metrics-file for a finished run.
// runErr is the run's overall failure (nil when everything is in place).
func writeReports(c *cli.Context, command, target string, res *item.Run, runErr error) error {
	if res == nil {
		res = &item.Run{Start: time.Now(), End: time.Now()}
	}
	down, up := res.Bytes()
	summary := map[string]int64{
		"done": int64(res.Count(item.Done)), "unchanged": int64(res.Count(item.Unchanged)),
		"failed": int64(res.Count(item.Failed)), "conflict": int64(res.Count(item.Conflicted)),
		"bytes_downloaded": down, "bytes_uploaded": up,
	}
	if p := c.String("report"); p != "" {
		rep := runReport{Tool: "tofu-oci-mirror", ToolVersion: toolVersion(), Command: command, PlanFile: c.String("config"), Shard: c.String("shard"), Target: target,
			Start: res.Start, End: res.End, DurationSeconds: res.End.Sub(res.Start).Seconds(), Success: runErr == nil,
			Summary: summary, Items: res.Items, PeakRSSBytes: peakRSS()}
		if rep.Items == nil {
			rep.Items = []item.Result{}
		}
		if runErr != nil {
			rep.Error = runErr.Error()
		}
		raw, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := atomicfile.WriteBytes(p, 0o644, append(raw, '\n')); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	if p := c.String("metrics-file"); p != "" {
		if err := atomicfile.WriteBytes(p, 0o644, metrics(p, command, c.String("shard"), res, summary, runErr == nil)); err != nil {
			return fmt.Errorf("--metrics-file: %w", err)
		}
	}
	return nil
}

// metrics renders the Prometheus text format. The last success timestamp
// survives failed runs: it is carried over from the previous file. A run
// of one shard labels every series shard="K/N".
func metrics(path, command, shard string, res *item.Run, summary map[string]int64, ok bool) []byte {
	const lastSuccess = "tofu_oci_mirror_last_success_timestamp_seconds"
	base := fmt.Sprintf("command=%q", command)
	if shard != "" {
		base += fmt.Sprintf(",shard=%q", shard)
	}
	label := "{" + base + "}"
	lastOK := previousValue(path, lastSuccess+label)
	if ok {
		lastOK = fmt.Sprintf("%d", res.End.Unix())
	}
	var b bytes.Buffer
	metric := func(name, help, kind string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
	}
	metric("tofu_oci_mirror_items", "Items of the last run by final state.", "gauge")
	for _, st := range []string{"done", "unchanged", "failed", "conflict"} {
		fmt.Fprintf(&b, "tofu_oci_mirror_items{%s,state=%q} %d\n", base, st, summary[st])
	}
	metric("tofu_oci_mirror_bytes", "Package bytes moved by the last run.", "gauge")
	fmt.Fprintf(&b, "tofu_oci_mirror_bytes{%s,direction=\"downloaded\"} %d\n", base, summary["bytes_downloaded"])
	fmt.Fprintf(&b, "tofu_oci_mirror_bytes{%s,direction=\"uploaded\"} %d\n", base, summary["bytes_uploaded"])
	metric("tofu_oci_mirror_run_duration_seconds", "Wall time of the last run.", "gauge")
	fmt.Fprintf(&b, "tofu_oci_mirror_run_duration_seconds%s %.3f\n", label, res.End.Sub(res.Start).Seconds())
	metric("tofu_oci_mirror_last_run_timestamp_seconds", "When the last run ended.", "gauge")
	fmt.Fprintf(&b, "tofu_oci_mirror_last_run_timestamp_seconds%s %d\n", label, res.End.Unix())
	metric("tofu_oci_mirror_last_run_success", "1 if everything in the plan was in place after the last run.", "gauge")
	success := 0
	if ok {
		success = 1
	}
	fmt.Fprintf(&b, "tofu_oci_mirror_last_run_success%s %d\n", label, success)
	if lastOK != "" {
		metric(lastSuccess, "When a run last ended with everything in place.", "gauge")
		fmt.Fprintf(&b, "%s%s %s\n", lastSuccess, label, lastOK)
	}
	return b.Bytes()
}

// previousValue reads one sample's value from an earlier metrics file.
func previousValue(path, series string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			if _, err := strconv.ParseFloat(v, 64); err == nil {
				return v
			}
		}
	}
	return ""
}

// peakRSS reads this process's resident high-water mark. Unlike rusage's
// maxrss it starts at exec, so it does not count the parent's memory that
// a forked child briefly shared.
func peakRSS() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kib, _ := strconv.ParseInt(f[0], 10, 64)
				return kib << 10
			}
		}
	}
	return 0
}
