package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// errLockHeld is returned when another run holds the plan's lock.
var errLockHeld = errors.New("another run holds the lock")

func lockFlag() cli.Flag {
	return &cli.StringFlag{Name: "lock-file", Usage: "run lock (default: the plan file's path + .lock, or + .shard-K-of-N.lock with --shard); a second run exits at once with code 3"}
}

// runLock is an OS file lock (flock) held for the whole run. The kernel
// drops it when the process dies, however it dies, so a lock left by a
// killed run never blocks the next one.
type runLock struct{ f *os.File }

// acquireLock takes the lock named by --lock-file, or the one next to the
// plan: PLAN.lock, or PLAN.shard-K-of-N.lock with --shard K/N, so two runs
// of one shard exclude each other and different shards run side by side.
func acquireLock(c *cli.Context) (*runLock, error) {
	path := c.String("lock-file")
	if path == "" {
		path = defaultLockFile(c.String("config"), c.String("shard"))
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("run lock %s: %v", path, err), exitFailed)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := strings.TrimSpace(string(holder))
			if who != "" {
				who = " (pid " + who + ")"
			}
			return nil, cli.Exit(fmt.Sprintf("%v: %s%s; this run does nothing", errLockHeld, filepath.Clean(path), who), exitLocked)
		}
		return nil, cli.Exit(fmt.Sprintf("run lock %s: %v", path, err), exitFailed)
	}
	// The pid is only for people reading the file; the flock is the lock.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &runLock{f: f}, nil
}

// release drops the lock; the file stays, so its inode is stable for the next run.
func (l *runLock) release() {
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
}

// defaultLockFile is the lock next to the plan file for a shard ("" or
// "K/N" as --shard gives it, already validated by setup).
func defaultLockFile(plan, shard string) string {
	if k, n, ok := strings.Cut(shard, "/"); ok {
		return fmt.Sprintf("%s.shard-%s-of-%s.lock", plan, k, n)
	}
	return plan + ".lock"
}
