package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/bcship/bcship/wire"
)

// clusterFile is cluster.toml: the nodes of a cluster and, when `bcship
// cluster up` wrote it, the dev key and the processes it started.
//
//	key   = "/abs/.bcship-cluster/keys/dev.key"  # signs code shipped by the CLI
//	trust = "/abs/.bcship-cluster/trust"         # trust directory of the nodes
//	dir   = "/abs/.bcship-cluster"               # logs (cluster up)
//
//	[[node]]
//	id   = 1
//	addr = "127.0.0.1:7401"
//	arch = "amd64"   # cluster up: the binary's GOARCH
//	pid  = 12345     # cluster up: the serve process
type clusterFile struct {
	Key   string        `toml:"key,omitempty"`
	Trust string        `toml:"trust,omitempty"`
	Dir   string        `toml:"dir,omitempty"`
	Nodes []clusterNode `toml:"node"`

	path string // where it was read from
}

type clusterNode struct {
	ID   uint32 `toml:"id"`
	Addr string `toml:"addr"`
	Arch string `toml:"arch,omitempty"`
	PID  int    `toml:"pid,omitempty"`
}

// errNoCluster reports that no cluster file was found.
var errNoCluster = errors.New("no cluster file: pass --cluster FILE, set $BCSHIP_CLUSTER, or run in a directory with cluster.toml (bcship cluster up writes one)")

// clusterPath resolves the cluster file: flag, $BCSHIP_CLUSTER, ./cluster.toml.
func clusterPath(flag string) string {
	if flag != "" {
		return flag
	}
	if p := os.Getenv("BCSHIP_CLUSTER"); p != "" {
		return p
	}
	return "cluster.toml"
}

func loadCluster(flag string) (*clusterFile, error) {
	p := clusterPath(flag)
	data, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && flag == "" {
			return nil, errNoCluster
		}
		return nil, err
	}
	var c clusterFile
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%s: unknown keys %v", p, und)
	}
	seen := map[uint32]bool{}
	for _, n := range c.Nodes {
		if seen[n.ID] {
			return nil, fmt.Errorf("%s: node %d listed twice", p, n.ID)
		}
		if _, _, err := net.SplitHostPort(n.Addr); err != nil {
			return nil, fmt.Errorf("%s: node %d: addr %q: %w", p, n.ID, n.Addr, err)
		}
		seen[n.ID] = true
	}
	c.path = p
	return &c, nil
}

func (c *clusterFile) write(path string) error {
	var b bytes.Buffer
	b.WriteString("# bcship cluster file. Node names on the command line: node3, 3 or host:port.\n")
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return err
	}
	return writeFileAtomic(path, b.Bytes(), 0o644)
}

// peers is the id → address map of the cluster.
func (c *clusterFile) peers() map[uint32]string {
	m := map[uint32]string{}
	for _, n := range c.Nodes {
		m[n.ID] = n.Addr
	}
	return m
}

func (c *clusterFile) node(id uint32) (clusterNode, bool) {
	i := slices.IndexFunc(c.Nodes, func(n clusterNode) bool { return n.ID == id })
	if i < 0 {
		return clusterNode{}, false
	}
	return c.Nodes[i], true
}

// resolveNode turns a node name (node3, 3, host:port) into an id and an
// address. host:port not in the cluster file is asked for its id.
func resolveNode(c *clusterFile, name string) (uint32, string, error) {
	num := strings.TrimPrefix(name, "node")
	if id, err := strconv.ParseUint(num, 10, 32); err == nil {
		if c == nil {
			return 0, "", fmt.Errorf("node %s: %w", name, errNoCluster)
		}
		n, ok := c.node(uint32(id))
		if !ok {
			return 0, "", fmt.Errorf("node %d is not in %s", id, c.path)
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
