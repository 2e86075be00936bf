package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
)

// measuredPeakRSS is the highest peak RSS in bench/RESULTS.md (25.1 MiB,
// the first sync of workload 1), rounded up.
const measuredPeakRSS = 26 << 20

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds the tool from the parent module once.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deploy-test-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "tofu-oci-mirror")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/tofu-oci-mirror")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

var flagRe = regexp.MustCompile(`^\s+--([a-z][a-z0-9-]*)`)

// flagsOf lists the long flags `tofu-oci-mirror COMMAND --help` shows.
func flagsOf(t *testing.T, command string) []string {
	t.Helper()
	out, err := exec.Command(binary(t), command, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --help: %v\n%s", command, err, out)
	}
	var flags []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := flagRe.FindStringSubmatch(sc.Text()); m != nil {
			flags = append(flags, m[1])
		}
	}
	if !slices.Contains(flags, "shard") || !slices.Contains(flags, "config") {
		t.Fatalf("%s --help lists no --shard or --config: the help format changed?\n%s", command, out)
	}
	return flags
}

// parseArgs splits "--name=value" / "--name value" arguments after the
// command into a map, failing on flags the command does not list.
func parseArgs(t *testing.T, where string, args []string, known []string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			t.Fatalf("%s: argument %q is not a --flag", where, a)
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !slices.Contains(known, name) {
			t.Errorf("%s: --%s is not a flag of the binary (it knows %v)", where, name, known)
		}
		if !hasValue {
			value = "true"
			if name != "no-progress" && i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
				value, i = args[i+1], i+1
			}
		}
		got[name] = value
	}
	return got
}

// objects are the decoded manifests of deploy/kubernetes.
type objects struct {
	cronJobs   []*batchv1.CronJob
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
}

// decodeAll strictly decodes every document of every manifest into its
// k8s.io/api type: an unknown or misspelt field (case included), a
// duplicate key or a kind we do not expect fails the test.
func decodeAll(t *testing.T) objects {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	objs := objects{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			where := fmt.Sprintf("%s document %d", f, i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "batch/v1 CronJob":
				cj := &batchv1.CronJob{}
				obj, objs.cronJobs = cj, append(objs.cronJobs, cj)
			case "v1 ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1 Secret":
				obj = &corev1.Secret{}
			default:
				t.Fatalf("%s: unexpected %s %s", where, tm.APIVersion, tm.Kind)
			}
			// As the API server decodes: YAML to JSON (duplicate keys
			// refused), then case-sensitive JSON refusing unknown and
			// duplicate fields (encoding/json alone would take
			// readOnlyRootFileSystem for readOnlyRootFilesystem).
			js, err := yaml.YAMLToJSONStrict([]byte(doc))
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			strict, err := kjson.UnmarshalStrict(js, obj)
			if err != nil || len(strict) > 0 {
				t.Fatalf("%s: strict decoding into %T: %v %v", where, obj, err, strict)
			}
			switch o := obj.(type) {
			case *corev1.ConfigMap:
				objs.configMaps[o.Name] = o
			case *corev1.Secret:
				objs.secrets[o.Name] = o
			}
		}
	}
	return objs
}

func stripComments(doc string) string {
	var out []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestKubernetesCronJob: the CronJob runs an Indexed Job whose pods each
// sync one shard, with the mounts, environment, limits and security the
// binary and the image need.
func TestKubernetesCronJob(t *testing.T) {
	objs := decodeAll(t)
	if len(objs.cronJobs) != 1 {
		t.Fatalf("want one CronJob, got %d", len(objs.cronJobs))
	}
	cj := objs.cronJobs[0]
	job := cj.Spec.JobTemplate.Spec
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("concurrencyPolicy %q, want Forbid", cj.Spec.ConcurrencyPolicy)
	}
	if job.CompletionMode == nil || *job.CompletionMode != batchv1.IndexedCompletion {
		t.Fatalf("completionMode %v, want Indexed", job.CompletionMode)
	}
	if job.Completions == nil || job.Parallelism == nil || *job.Completions != *job.Parallelism || *job.Completions < 2 {
		t.Fatalf("completions %v, parallelism %v: want equal, N >= 2", job.Completions, job.Parallelism)
	}
	n := int(*job.Completions)
	pod := job.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever && pod.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("restartPolicy %q", pod.RestartPolicy)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if len(c.Command) != 0 || len(c.Args) == 0 || c.Args[0] != "sync" {
		t.Fatalf("want args [sync ...] and the image's entrypoint, got command %v args %v", c.Command, c.Args)
	}
	flags := parseArgs(t, "cronjob args", c.Args[1:], flagsOf(t, "sync"))

	// --shard $(JOB_COMPLETION_INDEX)/N, N = completions, and the
	// variable defined so Kubernetes expands it.
	if want := fmt.Sprintf("$(JOB_COMPLETION_INDEX)/%d", n); flags["shard"] != want {
		t.Errorf("--shard %q, want %q", flags["shard"], want)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	idx, ok := env["JOB_COMPLETION_INDEX"]
	if !ok || idx.ValueFrom == nil || idx.ValueFrom.FieldRef == nil ||
		idx.ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
		t.Errorf("JOB_COMPLETION_INDEX not taken from the completion-index annotation: %+v", idx)
	}
	for k := range n {
		s, err := config.ParseShard(strings.ReplaceAll(flags["shard"], "$(JOB_COMPLETION_INDEX)", fmt.Sprint(k)))
		if err != nil || s != (config.Shard{K: k, N: n}) {
			t.Errorf("pod %d: --shard expands to %+v, %v", k, s, err)
		}
	}

	// Every path the binary is given lives on the right volume.
	mountOf := func(p string) (corev1.VolumeMount, corev1.Volume, string) {
		var best corev1.VolumeMount
		for _, m := range c.VolumeMounts {
			if (p == m.MountPath || strings.HasPrefix(p, m.MountPath+"/")) && len(m.MountPath) > len(best.MountPath) {
				best = m
			}
		}
		if best.Name == "" {
			t.Fatalf("%s is on no volume: the root filesystem is read-only", p)
		}
		for _, v := range pod.Volumes {
			if v.Name == best.Name {
				return best, v, strings.TrimPrefix(strings.TrimPrefix(p, best.MountPath), "/")
			}
		}
		t.Fatalf("mount %s names no volume", best.Name)
		return best, corev1.Volume{}, ""
	}
	itemKey := func(items []corev1.KeyToPath, file string) string {
		for _, it := range items {
			if it.Path == file {
				return it.Key
			}
		}
		return file // without items every key is a file of its name
	}

	m, v, file := mountOf(flags["config"])
	if v.ConfigMap == nil || !m.ReadOnly {
		t.Fatalf("--config %s is not on a read-only ConfigMap volume", flags["config"])
	}
	cm, ok := objs.configMaps[v.ConfigMap.Name]
	if !ok {
		t.Fatalf("ConfigMap %s is not among the manifests", v.ConfigMap.Name)
	}
	plan, ok := cm.Data[itemKey(v.ConfigMap.Items, file)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key for %s", cm.Name, file)
	}
	cfg, err := config.Parse("mirror.yaml", []byte(plan))
	if err != nil {
		t.Fatalf("the plan in ConfigMap %s: %v", cm.Name, err)
	}
	total := 0
	for k := range n {
		total += len(cfg.Shard(config.Shard{K: k, N: n}).Providers)
	}
	if total != len(cfg.Providers) || total == 0 {
		t.Errorf("the shards hold %d of %d providers", total, len(cfg.Providers))
	}

	m, v, file = mountOf(flags["docker-config"])
	if v.Secret == nil || !m.ReadOnly {
		t.Fatalf("--docker-config %s is not on a read-only Secret volume", flags["docker-config"])
	}
	sec, ok := objs.secrets[v.Secret.SecretName]
	if !ok {
		t.Fatalf("Secret %s is not among the manifests", v.Secret.SecretName)
	}
	if sec.Type != corev1.SecretTypeDockerConfigJson || itemKey(v.Secret.Items, file) != corev1.DockerConfigJsonKey || path.Base(file) != "config.json" {
		t.Errorf("the Secret %s (type %s) is not mounted as a Docker config.json at %s", sec.Name, sec.Type, flags["docker-config"])
	}
	if _, ok := sec.StringData[corev1.DockerConfigJsonKey]; !ok {
		if _, ok := sec.Data[corev1.DockerConfigJsonKey]; !ok {
			t.Errorf("Secret %s has no %s", sec.Name, corev1.DockerConfigJsonKey)
		}
	}

	for _, p := range []string{flags["spool-dir"], flags["lock-file"], env["TMPDIR"].Value, env["HOME"].Value} {
		if p == "" {
			t.Fatalf("spool dir, lock file, TMPDIR and HOME must all be set (the default lock is next to the read-only plan): %v", flags)
		}
		if m, v, _ := mountOf(p); v.EmptyDir == nil || m.ReadOnly {
			t.Errorf("%s is not on a writable emptyDir", p)
		} else if v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.Cmp(resource.MustParse("1Gi")) < 0 {
			t.Errorf("the spool emptyDir has no sizeLimit of at least 1Gi (4 packages of ~185 MB): %v", v.EmptyDir.SizeLimit)
		}
	}

	// Limits from measured memory; non-root, read-only root filesystem.
	req, lim := c.Resources.Requests.Memory(), c.Resources.Limits.Memory()
	if req.Value() < 2*measuredPeakRSS || lim.Value() < 4*measuredPeakRSS || lim.Cmp(*req) < 0 {
		t.Errorf("memory request %s / limit %s: want >= 2x and >= 4x the measured peak of %d MiB", req, lim, measuredPeakRSS>>20)
	}
	if c.Resources.Limits.StorageEphemeral().IsZero() {
		t.Errorf("no ephemeral-storage limit")
	}
	sc, psc := c.SecurityContext, pod.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container security context: %+v", sc)
	}
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Fatalf("pod security context: %+v", psc)
	}
	if uid := dockerfileUser(t); fmt.Sprint(*psc.RunAsUser) != uid {
		t.Errorf("runAsUser %d, but the Dockerfile's USER is %s", *psc.RunAsUser, uid)
	}
}

// dockerfileUser is the uid of the final stage's USER.
func dockerfileUser(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	user := ""
	stages := 0
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && strings.EqualFold(f[0], "FROM") {
			stages++
		}
		if len(f) == 2 && strings.EqualFold(f[0], "USER") {
			user, _, _ = strings.Cut(f[1], ":")
		}
	}
	if stages < 2 || user == "" || user == "0" || user == "root" {
		t.Fatalf("the Dockerfile must be multi-stage (%d stages) and end as a non-root USER (%q)", stages, user)
	}
	if !strings.Contains(string(raw), "CGO_ENABLED=0") || !strings.Contains(string(raw), "git") || !strings.Contains(string(raw), "ca-certificates") {
		t.Fatal("the Dockerfile must build a static binary and install git and CA certificates")
	}
	return user
}

// execStart reads a unit's ExecStart, joining continuation lines.
func execStart(t *testing.T, unit string) []string {
	t.Helper()
	raw, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.ReplaceAll(string(raw), "\\\n", " ")
	for _, l := range strings.Split(joined, "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			return strings.Fields(v)
		}
	}
	t.Fatalf("%s has no ExecStart", unit)
	return nil
}

// TestSystemdUnits: the service runs sync with flags the binary knows,
// its lock, spool and report in the directories systemd creates for it,
// exit 3 (lock held) counted as success; systemd-analyze verify accepts
// both units.
func TestSystemdUnits(t *testing.T) {
	const service, timer = "systemd/tofu-oci-mirror.service", "systemd/tofu-oci-mirror.timer"
	args := execStart(t, service)
	if len(args) < 2 || args[1] != "sync" {
		t.Fatalf("ExecStart %v: want BINARY sync ...", args)
	}
	flags := parseArgs(t, "ExecStart", args[2:], flagsOf(t, "sync"))
	raw, _ := os.ReadFile(service)
	unit := string(raw)
	for flag, dir := range map[string]string{"lock-file": "/var/lib/tofu-oci-mirror/", "report": "/var/lib/tofu-oci-mirror/", "spool-dir": "/var/cache/tofu-oci-mirror", "config": "/etc/tofu-oci-mirror/"} {
		if !strings.HasPrefix(flags[flag], dir) {
			t.Errorf("--%s %q is outside %s", flag, flags[flag], dir)
		}
	}
	for _, want := range []string{"StateDirectory=tofu-oci-mirror", "CacheDirectory=tofu-oci-mirror", "ConfigurationDirectory=tofu-oci-mirror", "SuccessExitStatus=3", "Type=oneshot"} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Errorf("the service lacks %s", want)
		}
	}
	traw, _ := os.ReadFile(timer)
	if !strings.Contains(string(traw), "OnCalendar=") || !strings.Contains(string(traw), "Persistent=true") {
		t.Errorf("timer: %s", traw)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the units were checked above, not by systemd")
	}
	// verify wants ExecStart's binary to exist: point it at the one built.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tofu-oci-mirror.service"), []byte(strings.ReplaceAll(unit, args[0], binary(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tofu-oci-mirror.timer"), traw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", filepath.Join(dir, "tofu-oci-mirror.service"), filepath.Join(dir, "tofu-oci-mirror.timer")).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
