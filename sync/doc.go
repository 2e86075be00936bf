// Package sync is the engine of tofu-oci-mirror: it plans what the target OCI
// registry lacks compared with upstream OpenTofu registries, and executes that
// plan by copying verified provider packages into the layout OpenTofu reads.
//
// The plan is a value: [NewPlanner] and [Planner.Plan] compute it without
// writing anything, [Executor.Execute] carries it out. Tests assert on plans
// without pushing, and the CLI prints the same value that sync executes.
package sync
