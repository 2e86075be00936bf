package faulttest_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
)

// deleteKiller SIGKILLs the process in proc when the registry receives its
// n-th DELETE, and lets the registry handle that request only once the
// process is dead.
type deleteKiller struct {
	mu      sync.Mutex
	n, seen int
	proc    chan *os.Process
	exited  chan struct{}
	fired   bool
}

func (k *deleteKiller) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			k.mu.Lock()
			k.seen++
			fire := !k.fired && k.n > 0 && k.seen == k.n
			k.fired = k.fired || fire
			k.mu.Unlock()
			if fire {
				_ = (<-k.proc).Kill()
				<-k.exited
			}
		}
		next.ServeHTTP(w, r)
	})
}

// prunePlan writes the scene's plan with "newest: 1" on both providers.
func (s *scene) prunePlan(reg *testregistry.Registry) string {
	s.t.Helper()
	path := s.plan(reg)
	raw, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatal(err)
	}
	out := strings.ReplaceAll(string(raw), "versions: \">= 1.0.0\"\n", "versions: \">= 1.0.0\"\n    newest: 1\n")
	pruned := strings.TrimSuffix(path, ".yaml") + "-newest.yaml"
	if err := os.WriteFile(pruned, []byte(out), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return pruned
}

// killedRun runs the CLI with k watching for the kill; it reports
// whether the process died by SIGKILL.
func (s *scene) killedRun(k *deleteKiller, args ...string) bool {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mirrorBin, args...)
	cmd.Dir = s.dir
	cmd.Env = []string{"HOME=" + s.t.TempDir(), "TMPDIR=" + s.t.TempDir(), "PATH=" + os.Getenv("PATH")}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	k.proc <- cmd.Process
	err := cmd.Wait()
	close(k.exited)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	s.t.Logf("not killed: %v\n%s", err, out.String())
	return false
}

// TestSIGKILLMidPruneThenRerun: a prune --apply killed as the registry
// receives its 2nd DELETE (the first version's tag; the 1st is the
// delete probe), its 4th (a platform manifest, the index already gone)
// and its 7th (the provenance fallback tag), each handled only once the
// process is dead, then run again, ends with the tags and digests of an
// uninterrupted prune (a left fallback tag or a tag resolving to nothing
// would show); what remains verifies and a further prune finds nothing.
func TestSIGKILLMidPruneThenRerun(t *testing.T) {
	s := newScene(t)
	reference := testregistry.New(t, testregistry.WithDelete())
	s.mustMirror(nil, "sync", "-c", s.plan(reference), "--no-progress")
	refPlan := s.prunePlan(reference)
	s.mustMirror(nil, "prune", "-c", refPlan, "--apply", "--concurrency", "1")
	want := state(t, reference)
	if len(want) < 2 {
		t.Fatalf("reference after prune: %v", want)
	}
	for _, tag := range want {
		if strings.Contains(tag, ":1.0.0 ") || strings.Contains(tag, ":1.1.0 ") {
			t.Fatalf("the reference prune left %s", tag)
		}
	}

	for _, at := range []int{2, 4, 7} {
		t.Run("at DELETE "+string(rune('0'+at)), func(t *testing.T) {
			sub := *s
			sub.t = t
			k := &deleteKiller{n: at, proc: make(chan *os.Process, 1), exited: make(chan struct{})}
			reg := testregistry.New(t, testregistry.WithDelete(), testregistry.WithMiddleware(k.middleware))
			sub.mustMirror(nil, "sync", "-c", sub.plan(reg), "--no-progress")
			plan := sub.prunePlan(reg)
			if !sub.killedRun(k, "prune", "-c", plan, "--apply", "--concurrency", "1", "--no-progress") {
				t.Fatal("the prune ended before the kill: the test proves nothing")
			}
			partial := state(t, reg)
			t.Logf("killed at DELETE %d; %d tags meanwhile", at, len(partial))
			sub.mustMirror(nil, "prune", "-c", plan, "--apply", "--concurrency", "1")
			assertSameState(t, state(t, reg), want)
			sub.mustMirror(nil, "verify", "-c", plan)
			if r := sub.mustMirror(nil, "prune", "-c", plan, "--detailed-exitcode"); !strings.Contains(r.stdout, "0 to delete") {
				t.Fatalf("a third prune still finds work:\n%s", r)
			}
		})
	}
}
