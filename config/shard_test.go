package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseShard(t *testing.T) {
	for in, want := range map[string]Shard{"": {}, "0/1": {0, 1}, "3/4": {3, 4}, "0/16": {0, 16}} {
		got, err := ParseShard(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseShard(%q) = %+v, %v (String %q)", in, got, err, got.String())
		}
	}
	for _, in := range []string{"4/4", "-1/4", "1/0", "1", "a/b", "1/4/2", "+1/4", " 1/4"} {
		if _, err := ParseShard(in); !errors.Is(err, ErrInvalidShard) {
			t.Errorf("ParseShard(%q): %v, want ErrInvalidShard", in, err)
		}
	}
}

// TestShardPartition: every entry lands in exactly one shard, the shards
// are not wildly uneven, and adding entries moves none of the others.
func TestShardPartition(t *testing.T) {
	var body strings.Builder
	body.WriteString("version: 1\nplatforms: [linux_amd64]\nproviders:\n")
	for i := range 200 {
		fmt.Fprintf(&body, "  - source: ns%d/p%d\n    versions: \">= 1.0\"\n", i%7, i)
	}
	body.WriteString("modules:\n")
	for i := range 40 {
		fmt.Fprintf(&body, "  - source: ns/m%d/aws\n    versions: \">= 1.0\"\n", i)
	}
	cfg, err := Parse("mirror.yaml", []byte(body.String()))
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	owner := map[string]int{}
	for k := range n {
		part := cfg.Shard(Shard{K: k, N: n})
		if len(part.Providers) < 25 {
			t.Errorf("shard %d holds only %d of 200 providers", k, len(part.Providers))
		}
		if part.Target != cfg.Target || len(part.Platforms) != 1 {
			t.Errorf("shard %d lost the plan's settings", k)
		}
		for _, p := range part.Providers {
			if prev, dup := owner[p.Source.String()]; dup {
				t.Fatalf("%s in shards %d and %d", p.Source, prev, k)
			}
			owner[p.Source.String()] = k
		}
		for _, m := range part.Modules {
			if prev, dup := owner[m.Source.String()]; dup {
				t.Fatalf("%s in shards %d and %d", m.Source, prev, k)
			}
			owner[m.Source.String()] = k
		}
	}
	if len(owner) != 240 {
		t.Fatalf("shards hold %d entries, want 240", len(owner))
	}
	if cfg.Shard(Shard{}) != cfg || len(cfg.Providers) != 200 {
		t.Fatal("the zero shard is not the whole plan, or Shard changed the plan")
	}

	// A bigger plan: every old entry stays in its shard.
	body.WriteString("  - source: other/new/aws\n    versions: \">= 1.0\"\n")
	bigger, err := Parse("mirror.yaml", []byte(strings.Replace(body.String(), "providers:\n", "providers:\n  - source: zz/new\n    versions: \">= 1.0\"\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	for k := range n {
		for _, p := range bigger.Shard(Shard{K: k, N: n}).Providers {
			if was, ok := owner[p.Source.String()]; ok && was != k {
				t.Errorf("%s moved from shard %d to %d", p.Source, was, k)
			}
		}
	}
	// The hash is part of the deployed contract (a Job's pods, and two
	// tool versions during an upgrade, must agree): these values are
	// sha256 computed outside Go (python3 hashlib, first 8 bytes big-endian).
	for _, tt := range []struct {
		address  string
		n, shard int
	}{
		{"registry.opentofu.org/hashicorp/aws", 4, 2}, {"registry.opentofu.org/hashicorp/aws", 7, 1},
		{"registry.opentofu.org/hashicorp/null", 4, 3}, {"registry.opentofu.org/acme/net/aws", 7, 6},
	} {
		if got := ShardOf(tt.address, tt.n); got != tt.shard {
			t.Errorf("ShardOf(%s, %d) = %d, want %d", tt.address, tt.n, got, tt.shard)
		}
	}
}
