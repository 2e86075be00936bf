package bundle_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/bundle"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
)

// TestImportAppliesNewest: export with "newest: 1" carries only the newest
// widget; an import plan with the same rule admits it, and a bundle made
// without the rule (carrying 1.0.0 and 1.1.0) is refused by a plan that
// keeps only the newest, naming the older version, before anything is
// pushed.
func TestImportAppliesNewest(t *testing.T) {
	w := newWorld(t)
	newest := strings.Replace(planAB, `versions: ">= 1.0.0"`, "versions: \">= 1.0.0\"\n    newest: 1", 1)
	exp, data := w.export(w.config(nil, defaultTemplate, newest), nil)
	var carried []string
	for _, a := range exp.Metadata.Artifacts {
		carried = append(carried, a.Address+" "+a.Version)
	}
	if strings.Join(carried, ",") != "registry.opentofu.org/acme/gadget 2.0.0,registry.opentofu.org/acme/widget 1.1.0" {
		t.Fatalf("export carried %v", carried)
	}
	reg := testregistry.New(t)
	res, err := importBytes(t, w.config(reg, defaultTemplate, newest), data)
	if err != nil || res.Count(item.Done) != 2 {
		t.Fatalf("import: %v %+v", err, res)
	}

	_, all := w.export(w.config(nil, defaultTemplate, planAB), nil)
	other := testregistry.New(t)
	_, err = importBytes(t, w.config(other, defaultTemplate, newest), all)
	if !errors.Is(err, bundle.ErrNotInPlan) || !strings.Contains(err.Error(), "widget 1.0.0: ") ||
		!strings.Contains(err.Error(), "not among the 1 newest") || strings.Contains(err.Error(), "widget 1.1.0: ") {
		t.Fatalf("import of a bundle with more versions than kept: %v", err)
	}
	if other.Counts().Pushes() != 0 {
		t.Fatalf("refused import pushed: %+v", other.Counts())
	}
}
