package bundle

import (
	"sort"

	"github.com/regclient/regclient/types/descriptor"
)

func sortDescriptors(ds []descriptor.Descriptor) {
	sort.Slice(ds, func(i, j int) bool { return ds[i].Digest < ds[j].Digest })
}
