package modsource

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// git finds the git executable once.
func (f *Fetcher) git() (string, error) {
	f.lookOnce.Do(func() {
		f.gitBin, f.gitErr = exec.LookPath(f.gitPath)
		if f.gitErr != nil {
			f.gitErr = fmt.Errorf("%w: git sources need the git CLI (looking for %q: %v)", ErrGitNotFound, f.gitPath, f.gitErr)
		}
	})
	return f.gitBin, f.gitErr
}

// fetchGit checks src out into dst and returns the commit. Like OpenTofu it
// uses the git CLI, so proxies, credential helpers and ssh agents work as
// they do for git itself; unlike OpenTofu's full clone it fetches only the
// wanted commit when the server allows, and falls back to all branches
// and tags (then resolves the ref locally) when it does not, as for a
// short SHA or a commit SHA on a server refusing unadvertised objects.
func (f *Fetcher) fetchGit(ctx context.Context, src Source, dst string) (string, error) {
	bin, err := f.git()
	if err != nil {
		return "", err
	}
	env := f.gitEnv()
	run := func(args ...string) (string, error) { return f.runGit(ctx, bin, env, args...) }
	in := func(args ...string) (string, error) { return run(append([]string{"-C", dst}, args...)...) }

	if _, err := run("init", "-q", dst); err != nil {
		return "", err
	}
	if _, err := in("remote", "add", "origin", src.URL); err != nil {
		return "", err
	}
	want := src.Ref
	if want == "" {
		want = "HEAD"
	}
	var commit string
	if _, shallowErr := in("fetch", "-q", "--no-tags", "--depth", "1", "origin", want); shallowErr == nil {
		if commit, err = in("rev-parse", "--verify", "FETCH_HEAD^{commit}"); err != nil {
			return "", err
		}
	} else {
		if src.Ref == "" || ctx.Err() != nil {
			return "", shallowErr
		}
		f.logger.Debug("shallow fetch failed, fetching all branches and tags", "source", src.String(), "error", shallowErr)
		if _, err := in("fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"); err != nil {
			return "", fmt.Errorf("%w (after a shallow fetch of %q failed too)", err, want)
		}
		for _, cand := range []string{"refs/tags/" + src.Ref, "refs/remotes/origin/" + src.Ref, src.Ref} {
			if commit, err = in("rev-parse", "-q", "--verify", cand+"^{commit}"); err == nil {
				break
			}
		}
		if commit == "" || err != nil {
			return "", fmt.Errorf("%w: ref %q is not a tag, branch or commit of %s", ErrGit, src.Ref, Redact(src.URL))
		}
	}
	if _, err := in("checkout", "-q", "--detach", commit); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dst, ".gitmodules")); err == nil {
		// OpenTofu's getter checks submodules out too; they are part of the package.
		if _, err := in("submodule", "update", "-q", "--init", "--recursive"); err != nil {
			return "", err
		}
	}
	return commit, nil
}

// gitEnv is the environment of git commands: the user's (for proxies, CA
// bundles, ssh agents), minus variables that would point git at another
// repository, plus no prompts, a protocol allow-list, and the GitHub token
// as an extra header for https://github.com/ only. Config travels as
// GIT_CONFIG_KEY_n/VALUE_n, after any the user set, so the token never
// appears in a command line or log.
func (f *Fetcher) gitEnv() []string {
	var env []string
	count := 0
	allowSet := false
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
			"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_PREFIX":
			continue
		case "GIT_CONFIG_COUNT":
			count, _ = strconv.Atoi(v)
			continue
		case "GIT_ALLOW_PROTOCOL":
			allowSet = true
		}
		env = append(env, kv)
	}
	add := func(key, value string) {
		env = append(env, fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", count, key), fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", count, value))
		count++
	}
	add("init.defaultBranch", "main") // silences init's hint
	if f.githubToken != "" {
		add("http.https://github.com/.extraheader", "Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("x-access-token:"+f.githubToken)))
	}
	env = append(env, "GIT_CONFIG_COUNT="+strconv.Itoa(count), "GIT_TERMINAL_PROMPT=0")
	if f.gitCAFile != "" {
		env = append(env, "GIT_SSL_CAINFO="+f.gitCAFile) // last, so it wins over the user's
	}
	if !allowSet {
		// Submodules could otherwise name file:// or ext:: remotes.
		env = append(env, "GIT_ALLOW_PROTOCOL=https:http:ssh:git")
	}
	return env
}

// runGit runs one git command and returns its trimmed standard output.
func (f *Fetcher) runGit(ctx context.Context, bin string, env []string, args ...string) (string, error) {
	if f.gitHook != nil {
		f.gitHook(slices.Clone(args))
	}
	// Messages name the command, not the temporary directory it ran in.
	var shown []string
	for i := 0; i < len(args); i++ {
		if args[i] == "-C" && i+1 < len(args) {
			i++
			continue
		}
		shown = append(shown, Redact(args[i]))
	}
	f.logger.Debug("git", "args", shown)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.WaitDelay = 10 * time.Second
	stdout := &cappedBuffer{max: 64 << 10}
	stderr := &cappedBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("git %s: %w", strings.Join(shown, " "), ctx.Err())
		}
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			msg = ": " + msg
		}
		return "", fmt.Errorf("%w: git %s: %v%s", ErrGit, strings.Join(shown, " "), err, msg)
	}
	return strings.TrimSpace(stdout.String()), nil
}

// cappedBuffer keeps the first max bytes written and drops the rest.
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
