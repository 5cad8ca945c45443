package verbs

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/Mellanox/rdmamap"
)

const sysInfiniband = "/sys/class/infiniband"

// DeviceInfo describes an RDMA device as sysfs shows it.
type DeviceInfo struct {
	Name     string     // e.g. rxe0
	Uverbs   string     // command device, e.g. /dev/infiniband/uverbs0
	NodeGUID string     // as sysfs prints it
	Ports    []PortInfo // port 1 first
}

// PortInfo is one port of a device.
type PortInfo struct {
	Port      int
	State     string // "ACTIVE", "DOWN", …
	LinkLayer string // "Ethernet" for RoCE
	GIDs      []GIDInfo
}

// GIDInfo is a populated GID table entry.
type GIDInfo struct {
	Index  int
	GID    net.IP // 16 bytes
	Type   string // "RoCE v2", "IB/RoCE v1"
	Netdev string
}

// RoCEv2IPv4 reports whether g is a RoCE v2 entry derived from an IPv4
// address (::ffff:a.b.c.d): what a loopback or IPv4 fabric uses.
func (g GIDInfo) RoCEv2IPv4() bool { return g.Type == "RoCE v2" && g.GID.To4() != nil }

// Devices lists the RDMA devices (through rdmamap) with their ports and GIDs.
func Devices() ([]DeviceInfo, error) {
	names := rdmamap.GetRdmaDeviceList()
	sort.Strings(names)
	var out []DeviceInfo
	for _, n := range names {
		d, err := Device(n)
		if err != nil {
			return nil, err
		}
		out = append(out, *d)
	}
	return out, nil
}

// Device describes one RDMA device by name.
func Device(name string) (*DeviceInfo, error) {
	if name == "" || strings.ContainsAny(name, "/.") {
		return nil, misuse("device", 19 /* ENODEV */, ErrNoDevice)
	}
	dir := filepath.Join(sysInfiniband, name)
	if _, err := os.Stat(dir); err != nil {
		return nil, misuse("device "+name, 19, ErrNoDevice)
	}
	d := &DeviceInfo{Name: name, NodeGUID: readSys(dir, "node_guid")}
	for _, c := range rdmamap.GetRdmaCharDevices(name) {
		if strings.HasPrefix(filepath.Base(c), "uverbs") {
			d.Uverbs = c
		}
	}
	var ports []int
	for _, p := range rdmamap.GetPorts(name) {
		if n, err := strconv.Atoi(p); err == nil {
			ports = append(ports, n)
		}
	}
	sort.Ints(ports)
	for _, p := range ports {
		pd := filepath.Join(dir, "ports", strconv.Itoa(p))
		pi := PortInfo{Port: p, LinkLayer: readSys(pd, "link_layer")}
		// state reads "4: ACTIVE".
		st := readSys(pd, "state")
		if _, s, ok := strings.Cut(st, ": "); ok {
			st = s
		}
		pi.State = st
		pi.GIDs = portGIDs(pd)
		d.Ports = append(d.Ports, pi)
	}
	return d, nil
}

func portGIDs(portDir string) []GIDInfo {
	ents, _ := os.ReadDir(filepath.Join(portDir, "gids"))
	var gids []GIDInfo
	for _, e := range ents {
		i, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ip := net.ParseIP(readSys(portDir, "gids", e.Name()))
		if ip == nil || ip.IsUnspecified() {
			continue
		}
		gids = append(gids, GIDInfo{
			Index:  i,
			GID:    ip.To16(),
			Type:   readSys(portDir, "gid_attrs", "types", e.Name()),
			Netdev: readSys(portDir, "gid_attrs", "ndevs", e.Name()),
		})
	}
	sort.Slice(gids, func(a, b int) bool { return gids[a].Index < gids[b].Index })
	return gids
}

// FindRoCEv2GID picks the RoCE v2 GID of port to address a peer with:
// the first IPv4-mapped entry, else the first RoCE v2 one.
func FindRoCEv2GID(device string, port int) (GIDInfo, error) {
	d, err := Device(device)
	if err != nil {
		return GIDInfo{}, err
	}
	if g, ok := d.RoCEv2GID(port); ok {
		return g, nil
	}
	return GIDInfo{}, misuse(fmt.Sprintf("gid %s/%d", device, port), 61 /* ENODATA */, ErrNoGID)
}

// RoCEv2GID is FindRoCEv2GID on what Device already read (each sysfs read
// of a GID table is a thousand files).
func (d *DeviceInfo) RoCEv2GID(port int) (GIDInfo, bool) {
	for _, p := range d.Ports {
		if p.Port != port {
			continue
		}
		var v2 *GIDInfo
		for i, g := range p.GIDs {
			if g.RoCEv2IPv4() {
				return g, true
			}
			if g.Type == "RoCE v2" && v2 == nil {
				v2 = &p.GIDs[i]
			}
		}
		if v2 != nil {
			return *v2, true
		}
	}
	return GIDInfo{}, false
}

func readSys(parts ...string) string {
	b, err := os.ReadFile(filepath.Join(parts...))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
