// Package item names what the engine mirrors and what became of it: the
// kinds of artifact, the states a planned version can be in, and the
// per-item results of a run (sync, export, import). Every other package
// of the engine, and the CLI, speaks these types instead of string
// literals.
package item

import (
	"encoding/json"
	"errors"
	"time"
)

// Kind is the sort of artifact an item is.
type Kind string

// The kinds of artifact the engine mirrors.
const (
	// Provider is an OpenTofu provider version: an image index with one
	// manifest per platform.
	Provider Kind = "provider"
	// Module is a module package version: one image manifest.
	Module Kind = "module"
)

// State says how much of a planned version the target already holds.
type State string

// The states of a planned version.
const (
	// Missing: the tag does not exist; everything is to copy.
	Missing State = "missing"
	// Incomplete: a valid index exists but lacks wanted platforms; the new
	// index is the union of old and new platforms, re-tagged.
	Incomplete State = "incomplete"
	// Complete: nothing to do.
	Complete State = "complete"
	// Conflict: the tag holds something that is not an OpenTofu artifact
	// of the expected kind. Reported, never overwritten.
	Conflict State = "conflict"
)

// Pending reports whether executing the plan would change this version.
func (s State) Pending() bool { return s == Missing || s == Incomplete }

// Outcome is what became of an item in a run.
type Outcome string

// The outcomes of an item.
const (
	// Done: copied and tagged.
	Done Outcome = "done"
	// Unchanged: already complete.
	Unchanged Outcome = "unchanged"
	// Failed: not published; see the item's Err.
	Failed Outcome = "failed"
	// Conflicted: the tag holds a foreign artifact and was left alone.
	Conflicted Outcome = "conflict"
)

// Action is what a run set out to do with an item.
type Action string

// The actions of an item.
const (
	// Create a version the target lacks.
	Create Action = "create"
	// Update an existing version (add platforms).
	Update Action = "update"
	// None: the version was complete.
	None Action = "none"
	// Skip: a conflict, left alone.
	Skip Action = "skip"
	// PlanFailed: the entry could not be planned; no version was tried.
	PlanFailed Action = "plan"
)

// ActionFor is the action that carries a pending state out.
func ActionFor(s State) Action {
	if s == Incomplete {
		return Update
	}
	return Create
}

// Result is the outcome of one version of a provider or module (or of an
// entry that could not be planned, with an empty Version). Its JSON is
// the per-item record of run reports.
type Result struct {
	Kind       Kind          `json:"kind"`
	Address    string        `json:"address"`
	Version    string        `json:"version,omitempty"`
	Repository string        `json:"repository"`
	Tag        string        `json:"tag,omitempty"`
	Action     Action        `json:"action"`
	State      Outcome       `json:"state"`
	Platforms  []string      `json:"platforms,omitempty"`
	Source     string        `json:"oci_source,omitempty"` // module version in place: its oci:// address
	Digest     string        `json:"digest,omitempty"`
	Downloaded int64         `json:"bytes_downloaded"`
	Uploaded   int64         `json:"bytes_uploaded"`
	Duration   time.Duration `json:"duration_ns"`
	Warnings   []string      `json:"warnings,omitempty"`
	// Err is why the item failed or conflicts; nil otherwise. Its message
	// is the "error" of the JSON record.
	Err error `json:"-"`
}

// ErrorText is Err's message, or "" when there is none.
func (r *Result) ErrorText() string { return errorText(r.Err) }

// MarshalJSON writes the record with Err's message as "error".
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain(r), r.ErrorText()})
}

// Fail marks the item failed for err.
func (r *Result) Fail(err error) {
	r.State, r.Err = Failed, err
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ErrorText renders an error for a JSON field; nil is "".
func ErrorText(err error) string { return errorText(err) }

// Run is what a run did: one Result per item, in completion order.
type Run struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Items []Result  `json:"items"`
}

// Count returns how many items ended in o.
func (r *Run) Count(o Outcome) int {
	n := 0
	for _, it := range r.Items {
		if it.State == o {
			n++
		}
	}
	return n
}

// Bytes returns the bytes downloaded and uploaded over the run.
func (r *Run) Bytes() (downloaded, uploaded int64) {
	for _, it := range r.Items {
		downloaded += it.Downloaded
		uploaded += it.Uploaded
	}
	return downloaded, uploaded
}

// Err joins every item's failure, or returns nil when everything in the
// plan is in place. A conflict counts as a failure: the version is not there.
func (r *Run) Err() error {
	var errs []error
	for _, it := range r.Items {
		if it.Err != nil {
			errs = append(errs, it.Err)
		}
	}
	return errors.Join(errs...)
}

// Event reports progress to a user interface.
type Event struct {
	// Bytes is a count of package bytes just downloaded.
	Bytes int64
	// Item is set when an item has finished.
	Item *Result
}
