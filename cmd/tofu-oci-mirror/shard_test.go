package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
)

// TestShardFlag: --shard K/N restricts plan, sync and verify to the
// entries the shard holds, takes a lock of its own (a held lock of shard
// 0 blocks shard 0 only), labels the report and the metrics, and refuses
// a malformed value.
func TestShardFlag(t *testing.T) {
	e := newCLIEnv(t)
	names := []string{"widget", "gadget", "sprocket", "gizmo", "doohickey", "thing"}
	body := "platforms: [linux_amd64]\nproviders:\n"
	for _, n := range names {
		e.up.AddProvider("acme", n, "1.0.0", "linux_amd64")
		body += "  - source: acme/" + n + "\n    versions: \"1.0.0\"\n"
	}
	e.writePlan(e.reg.Host, body)
	shardOf := map[string]int{}
	for _, n := range names {
		shardOf["registry.opentofu.org/acme/"+n] = config.ShardOf("registry.opentofu.org/acme/"+n, 2)
	}

	// Shard 0's lock held: shard 0 exits 3, shard 1 runs.
	f, err := os.OpenFile(e.plan+".shard-0-of-2.lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := e.run("sync", "-c", e.plan, "--shard", "0/2", "--no-progress"); code != exitLocked || !strings.Contains(errOut, "shard-0-of-2.lock") {
		t.Fatalf("shard 0 with its lock held: exit %d: %s", code, errOut)
	}
	report, prom := filepath.Join(e.dir, "report.json"), filepath.Join(e.dir, "mirror.prom")
	e.mustRun(exitOK, "sync", "-c", e.plan, "--shard", "1/2", "--no-progress", "--report", report, "--metrics-file", prom)
	_ = f.Close()

	var rep struct {
		Shard string `json:"shard"`
		Items []struct {
			Address string `json:"address"`
		} `json:"items"`
	}
	raw, _ := os.ReadFile(report)
	if err := json.Unmarshal(raw, &rep); err != nil || rep.Shard != "1/2" || len(rep.Items) == 0 {
		t.Fatalf("report: %v %s", err, raw)
	}
	for _, it := range rep.Items {
		if shardOf[it.Address] != 1 {
			t.Errorf("shard 1 synced %s, which hashes to shard %d", it.Address, shardOf[it.Address])
		}
	}
	m, _ := os.ReadFile(prom)
	if !strings.Contains(string(m), `tofu_oci_mirror_last_run_success{command="sync",shard="1/2"} 1`) ||
		!strings.Contains(string(m), `tofu_oci_mirror_items{command="sync",shard="1/2",state="done"}`) {
		t.Fatalf("metrics without the shard label:\n%s", m)
	}

	// Shard 0 still has work; shard 1 has none; the whole plan has shard 0's.
	e.mustRun(exitPending, "plan", "-c", e.plan, "--shard", "0/2", "--detailed-exitcode")
	e.mustRun(exitOK, "plan", "-c", e.plan, "--shard", "1/2", "--detailed-exitcode")
	out, _ := e.mustRun(exitOK, "plan", "-c", e.plan, "--output", "json")
	want := 0
	for _, n := range names {
		if shardOf["registry.opentofu.org/acme/"+n] == 0 {
			want++
			if !strings.Contains(out, "acme/"+n) {
				t.Errorf("unsharded plan lacks %s", n)
			}
		}
	}
	if want == 0 || want == len(names) {
		t.Fatalf("the test's names all hash to one shard: pick others")
	}
	e.mustRun(exitOK, "verify", "-c", e.plan, "--shard", "1/2")
	e.mustRun(exitFailed, "verify", "-c", e.plan, "--shard", "0/2")

	for _, bad := range []string{"2/2", "x", "1/-3"} {
		if code, _, errOut := e.run("plan", "-c", e.plan, "--shard", bad); code != exitFailed || !strings.Contains(errOut, "--shard: invalid shard") {
			t.Errorf("--shard %s: exit %d %s", bad, code, errOut)
		}
	}
}
