package config

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidShard reports a --shard value that is not K/N with 0 <= K < N.
var ErrInvalidShard = errors.New("invalid shard")

// Shard is one of N disjoint parts of a plan: shard K holds the entries
// whose address hashes to K modulo N. The partition depends on each
// address alone, so adding or removing an entry never moves another one to
// a different shard. The zero value (N == 0) is the whole plan.
type Shard struct {
	// K is the shard's index, counted from 0.
	K int
	// N is how many shards there are; 0 means the plan is not sharded.
	N int
}

// ParseShard reads "K/N" (as Kubernetes' Indexed Jobs give K in
// JOB_COMPLETION_INDEX): whole numbers with 0 <= K < N. "" is the zero
// Shard.
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{}, nil
	}
	ks, ns, ok := strings.Cut(s, "/")
	k, kerr := strconv.Atoi(ks)
	n, nerr := strconv.Atoi(ns)
	if !ok || kerr != nil || nerr != nil || strings.HasPrefix(ks, "+") || strings.HasPrefix(ns, "+") {
		return Shard{}, fmt.Errorf("%w %q: write K/N, e.g. 0/4 (K counted from 0)", ErrInvalidShard, s)
	}
	if n < 1 || k < 0 || k >= n {
		return Shard{}, fmt.Errorf("%w %q: want 0 <= K < N and N >= 1", ErrInvalidShard, s)
	}
	return Shard{K: k, N: n}, nil
}

// String is "K/N", or "" for the whole plan.
func (s Shard) String() string {
	if s.N == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.K, s.N)
}

// ShardOf is the shard of n that address belongs to: the first eight
// bytes of its SHA-256, big-endian, modulo n. Pass the address as
// [ProviderAddr.String] or [ModuleAddr.String] renders it.
func ShardOf(address string, n int) int {
	sum := sha256.Sum256([]byte(address))
	return int(binary.BigEndian.Uint64(sum[:8]) % uint64(n))
}

// Holds reports whether the shard holds the entry with this address; the
// whole plan holds every one.
func (s Shard) Holds(address string) bool {
	return s.N <= 1 || ShardOf(address, s.N) == s.K
}

// Shard returns the plan restricted to shard s: the same target, upstream,
// trust and defaults, and only the provider and module entries s holds, in
// file order. The zero Shard returns c itself. Every command filters once,
// here, so plan, sync, export, inventory, verify and prune agree on what a
// shard is.
func (c *Config) Shard(s Shard) *Config {
	if s.N == 0 {
		return c
	}
	out := *c
	out.Providers, out.Modules = nil, nil
	for _, p := range c.Providers {
		if s.Holds(p.Source.String()) {
			out.Providers = append(out.Providers, p)
		}
	}
	for _, m := range c.Modules {
		if s.Holds(m.Source.String()) {
			out.Modules = append(out.Modules, m)
		}
	}
	return &out
}
