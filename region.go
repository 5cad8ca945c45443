package bcship

import (
	"errors"
	"fmt"
	"maps"

	"github.com/bcship/bcship/internal/hostrt"
	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/wire"
)

// regionSet is an immutable snapshot of the registered regions, in the
// form kernels see them. Registration replaces the whole set, so a running
// kernel keeps a consistent view.
type regionSet struct {
	byName map[string][]byte
	descs  []hostrt.Region // what bc_region scans
	names  [][]byte        // backing for descs' Name pointers
}

// RegisterRegion makes data visible to kernels on this node as region name
// (bc_region) and to remote GET and PUT. The node uses data in place: kernels
// and PUTs write into it, so the caller must not reuse it for anything
// else. Kernels, PUTs and GETs reach the memory without any locking, like
// RDMA would: order conflicting accesses at a higher level. Registering a
// name again replaces the region; nil data removes it.
//
// On an RDMA node (Config.RDMADevice) the region is also registered with
// the device, so peers Get and Put it one-sided, without this node's CPU;
// when that registration fails (e.g. RLIMIT_MEMLOCK), the region is left
// as it was and the error returned.
func (n *Node) RegisterRegion(name string, data []byte) error {
	if name == "" || len(name) > wire.MaxString {
		return fmt.Errorf("%w: region name of %d bytes", ErrConfig, len(name))
	}
	if data != nil && len(data) == 0 {
		return fmt.Errorf("%w: region %q is empty", ErrConfig, name)
	}
	n.regMu.Lock()
	defer n.regMu.Unlock()
	// Before Start there is no transport yet: Start registers what is here
	// then (under regMu, so neither misses the other).
	n.trMu.RLock()
	one := n.one
	n.trMu.RUnlock()
	if one != nil {
		// ErrClosed: the node is closing, and nobody is left to read it
		// remotely; the local view is still updated, as on TCP.
		if err := one.RegisterRegion(name, data); err != nil && !errors.Is(err, transport.ErrClosed) {
			return fmt.Errorf("region %q: %w", name, err)
		}
	}
	byName := maps.Clone(n.regions.Load().byName)
	if data == nil {
		delete(byName, name)
	} else {
		byName[name] = data
	}
	rs := &regionSet{byName: byName}
	for nm, d := range byName {
		b := []byte(nm)
		rs.names = append(rs.names, b)
		rs.descs = append(rs.descs, hostrt.Region{Name: &b[0], NameLen: uint64(len(b)), Base: &d[0], Len: uint64(len(d))})
	}
	n.regions.Store(rs)
	return nil
}

// Region returns the registered region name, or nil.
func (n *Node) Region(name string) []byte { return n.regions.Load().byName[name] }

// slice bounds-checks a GET or PUT of length bytes at off of region name.
func (rs *regionSet) slice(name string, off, length uint64) ([]byte, wire.ErrorCode, string) {
	d, ok := rs.byName[name]
	if !ok {
		return nil, wire.CodeNoRegion, fmt.Sprintf("no region %q", name)
	}
	if off > uint64(len(d)) || length > uint64(len(d))-off {
		return nil, wire.CodeOutOfRange, fmt.Sprintf("%d bytes at offset %d of region %q (%d bytes)", length, off, name, len(d))
	}
	return d[off : off+length], wire.CodeOK, ""
}
