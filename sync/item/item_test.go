package item

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The report's per-item "error" is derived from Err, never kept by hand.
func TestResultJSON(t *testing.T) {
	ok := Result{Kind: Provider, Address: "registry.opentofu.org/acme/widget", Version: "1.0.0", Action: Create, State: Done}
	raw, _ := json.Marshal(ok)
	if strings.Contains(string(raw), `"error"`) || !strings.Contains(string(raw), `"kind":"provider"`) || !strings.Contains(string(raw), `"state":"done"`) {
		t.Fatalf("done item: %s", raw)
	}
	failed := ok
	failed.Fail(errors.New("checksum mismatch"))
	raw, _ = json.Marshal(failed)
	if !strings.HasSuffix(string(raw), `"error":"checksum mismatch"}`) || failed.State != Failed || failed.ErrorText() != "checksum mismatch" {
		t.Fatalf("failed item: %s", raw)
	}
	run := Run{Items: []Result{ok, failed, {State: Unchanged}}}
	if run.Count(Done) != 1 || run.Count(Failed) != 1 || run.Err() == nil {
		t.Fatalf("counts: %d done, %d failed, err %v", run.Count(Done), run.Count(Failed), run.Err())
	}
}
