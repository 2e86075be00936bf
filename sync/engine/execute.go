package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/copygraph"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/sched"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/spool"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

// run is the state of one Execute: the guarded target, the copy-graph
// pushing into it, and the transfer slots every kind shares.
type run struct {
	e      *Engine
	target *target.Breaker
	copier *copygraph.Copier
	prov   *target.ProvenanceStore // where provider provenance goes
	slots  *sched.Limit            // transfers
	meta   *sched.Limit            // metadata calls of transfers (download answers, SHA256SUMS)
	inPlan map[string]bool         // the plan's module addresses, lower-cased
	// deps mirrors the registry modules packages call, for a plan with
	// module_dependencies: rewrite; nil otherwise.
	deps *depRun
	// add records a finished item: dependencies mirrored for a package
	// are items of their own.
	add func(item.Result)
}

// Execute copies what plan says is missing. Per-item failures are kept in
// the result and the rest continue; the result's Err says whether
// everything in the plan is now in place. Each package transfer (a
// provider platform, a module version) holds one of the engine's
// concurrency slots from download to upload.
func (e *Engine) Execute(ctx context.Context, plan *Plan) *item.Run {
	res := &item.Run{Start: time.Now()}
	e.progress(item.Event{Total: plan.total()})
	spool.CleanStale(e.spoolDir, e.logger)
	var mu sync.Mutex
	var wg sync.WaitGroup
	add := func(it item.Result) {
		mu.Lock()
		res.Items = append(res.Items, it)
		mu.Unlock()
		e.progress(item.Event{Item: &it})
	}
	breaker := target.NewBreaker(e.publisher)
	r := &run{e: e, target: breaker, copier: copygraph.New(breaker, nil), slots: sched.NewLimit(e.concurrency),
		meta: sched.NewLimit(e.metadata),
		prov: target.ProvenanceOf(e.publisher), inPlan: modulesInPlan(plan), add: add}
	r.deps = r.dependencies(plan)
	for _, en := range plan.entries() {
		base := item.Result{Kind: en.kind, Address: en.address, Repository: en.repository}
		if en.err != nil {
			it := base
			it.Action, it.State, it.Err = item.PlanFailed, item.Failed, en.err
			add(it)
			continue
		}
		for _, v := range en.versions {
			it := base
			it.Version, it.Tag = v.version, v.tag
			switch {
			case v.state == item.Conflict:
				it.Action, it.State = item.Skip, item.Conflicted
				it.Err = fmt.Errorf("%s %s %s: %w at %s:%s: %s", en.kind, en.address, v.version, item.ErrConflict, en.repository, v.tag, v.detail)
				add(it)
			case v.err != nil:
				it.Action, it.State, it.Err = item.Create, item.Failed, v.err
				add(it)
			case !v.state.Pending() || v.copy == nil:
				it.Action, it.State, it.Digest, it.Source = item.None, item.Unchanged, v.digest, v.source
				it.Warnings = v.warnings
				add(it)
			default:
				it.Action = item.ActionFor(v.state)
				wg.Add(1)
				go func() {
					defer wg.Done()
					start := time.Now()
					out := v.copy(ctx, r, it)
					out.Duration = time.Since(start)
					if out.Err == nil && out.State != item.Unchanged {
						out.State = item.Done
					}
					add(out)
				}()
			}
		}
	}
	wg.Wait()
	res.End = time.Now()
	res.Provenance = r.prov.String()
	return res
}

// total is the work Execute starts on p: each platform to add to a
// pending provider version, and each pending module version that can be
// mirrored, one package each (sizes are learnt as downloads start).
func (p *Plan) total() *item.Total {
	t := &item.Total{}
	add := func(address, version string, n int) {
		t.Items = append(t.Items, item.Planned{Address: address, Version: version, Packages: n})
		t.Packages += n
	}
	for _, pp := range p.Providers {
		for _, v := range pp.Versions {
			if v.State.Pending() && len(v.Add) > 0 {
				add(pp.Address, v.Version, len(v.Add))
			}
		}
	}
	for _, mp := range p.Modules {
		for _, v := range mp.Versions {
			if v.State.Pending() && v.Err == nil {
				add(mp.Address, v.Version, 1)
			}
		}
	}
	return t
}

// slot takes a transfer slot, or reports the run was interrupted.
func (r *run) slot(ctx context.Context, name string) (func(), error) {
	return take(ctx, r.slots, name)
}

// metaSlot takes a slot for a metadata call, or reports the run was
// interrupted.
func (r *run) metaSlot(ctx context.Context, name string) (func(), error) {
	return take(ctx, r.meta, name)
}

func take(ctx context.Context, l *sched.Limit, name string) (func(), error) {
	if err := l.Acquire(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", name, item.ErrInterrupted, err)
	}
	return l.Release, nil
}

// ensureEmptyConfig uploads the empty config blob every manifest we build
// references, unless the repository has it: registries refuse a manifest
// whose config blob they lack.
func (r *run) ensureEmptyConfig(ctx context.Context, repo string) error {
	_, err := r.copier.Blob(ctx, repo, manifest.EmptyConfig(), copygraph.Bytes(descriptor.EmptyData), false)
	return err
}
