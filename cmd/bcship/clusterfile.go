package main

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bcship/bcship/internal/clusterfile"
	"github.com/bcship/bcship/wire"
)

// The cluster file lives in internal/clusterfile, which bcshipd shares.
type (
	clusterFile = clusterfile.File
	clusterNode = clusterfile.Node
)

// errNoCluster reports that no cluster file was found.
var errNoCluster = clusterfile.ErrNoCluster

// clusterPath resolves the cluster file: flag, $BCSHIP_CLUSTER, ./cluster.toml.
func clusterPath(flag string) string { return clusterfile.Resolve(flag) }

func loadCluster(flag string) (*clusterFile, error) { return clusterfile.Load(flag) }

// writeCluster writes c to path atomically.
func writeCluster(c *clusterFile, path string) error {
	data, err := c.Encode()
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data, 0o644)
}

// resolveNode turns a node name (node3, 3, host:port) into an id and an
// address. host:port not in the cluster file is asked for its id.
func resolveNode(c *clusterFile, name string) (uint32, string, error) {
	num := strings.TrimPrefix(name, "node")
	if id, err := strconv.ParseUint(num, 10, 32); err == nil {
		if c == nil {
			return 0, "", fmt.Errorf("node %s: %w", name, errNoCluster)
		}
		n, ok := c.Node(uint32(id))
		if !ok {
			return 0, "", fmt.Errorf("node %d is not in %s", id, c.Path)
		}
		return n.ID, n.Addr, nil
	}
	if _, _, err := net.SplitHostPort(name); err != nil {
		return 0, "", fmt.Errorf("node %q: want node3, 3 or host:port", name)
	}
	if c != nil {
		for _, n := range c.Nodes {
			if n.Addr == name {
				return n.ID, n.Addr, nil
			}
		}
	}
	id, err := probeID(name, 3*time.Second)
	if err != nil {
		return 0, "", fmt.Errorf("node %s: %w", name, err)
	}
	return id, name, nil
}

// probeID asks the node at addr for its id with a HELLO exchange.
func probeID(addr string, timeout time.Duration) (uint32, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(timeout))
	self := clientID()
	if _, err := wire.WriteFrame(nc, nil, wire.Header{Source: self}, &wire.Hello{Node: self}); err != nil {
		return 0, err
	}
	f, err := wire.ReadFrame(bufio.NewReader(nc), 1<<20, nil)
	if err != nil {
		return 0, err
	}
	var h wire.Hello
	if f.Type != wire.TypeHello {
		return 0, fmt.Errorf("answered HELLO with %v", f.Type)
	}
	if err := h.Decode(f.Payload); err != nil {
		return 0, err
	}
	return h.Node, nil
}

// clientID is a random node id for a CLI process, from the top half of
// the id space so that it does not collide with configured nodes.
func clientID() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint32(b[:]) | 1<<31
}

// absPath makes p absolute (cluster files outlive the directory they were
// written from).
func absPath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}
