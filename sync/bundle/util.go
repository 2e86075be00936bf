package bundle

import (
	"bytes"
	"io"
	"sort"

	"github.com/regclient/regclient/types/descriptor"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func sortDescriptors(ds []descriptor.Descriptor) {
	sort.Slice(ds, func(i, j int) bool { return ds[i].Digest < ds[j].Digest })
}
