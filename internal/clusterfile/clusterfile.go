// Package clusterfile reads and writes cluster.toml, the list of a
// cluster's nodes that `bcship cluster up` writes and that `bcship serve`,
// the CLI verbs and bcshipd read their peers from. It is shared so that
// bcshipd can read the file without the CLI's dependencies.
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
package clusterfile

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"

	"github.com/BurntSushi/toml"
)

// File is a cluster file.
type File struct {
	Key   string `toml:"key,omitempty"`
	Trust string `toml:"trust,omitempty"`
	Dir   string `toml:"dir,omitempty"`
	Nodes []Node `toml:"node"`

	// Path is where the file was read from; it is not part of the file.
	Path string `toml:"-"`
}

// Node is one node of the cluster.
type Node struct {
	ID   uint32 `toml:"id"`
	Addr string `toml:"addr"`
	Arch string `toml:"arch,omitempty"`
	PID  int    `toml:"pid,omitempty"`
}

// ErrNoCluster reports that no cluster file was named and none was found
// in the usual places.
var ErrNoCluster = errors.New("no cluster file: pass --cluster FILE, set $BCSHIP_CLUSTER, or run in a directory with cluster.toml (bcship cluster up writes one)")

// Resolve names the cluster file: given if set, else $BCSHIP_CLUSTER, else
// ./cluster.toml.
func Resolve(given string) string {
	if given != "" {
		return given
	}
	if p := os.Getenv("BCSHIP_CLUSTER"); p != "" {
		return p
	}
	return "cluster.toml"
}

// Load reads the cluster file Resolve(given) names. A default file that
// does not exist is ErrNoCluster.
func Load(given string) (*File, error) {
	p := Resolve(given)
	data, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && given == "" {
			return nil, ErrNoCluster
		}
		return nil, err
	}
	return Parse(p, data)
}

// Parse decodes a cluster file read from path (for messages and File.Path)
// and checks it: no unknown keys, no id twice, every addr host:port.
func Parse(path string, data []byte) (*File, error) {
	var c File
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%s: unknown keys %v", path, und)
	}
	seen := map[uint32]bool{}
	for _, n := range c.Nodes {
		if seen[n.ID] {
			return nil, fmt.Errorf("%s: node %d listed twice", path, n.ID)
		}
		if _, _, err := net.SplitHostPort(n.Addr); err != nil {
			return nil, fmt.Errorf("%s: node %d: addr %q: %w", path, n.ID, n.Addr, err)
		}
		seen[n.ID] = true
	}
	c.Path = path
	return &c, nil
}

// Encode returns the file's TOML text, with a header comment.
func (c *File) Encode() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# bcship cluster file. Node names on the command line: node3, 3 or host:port.\n")
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Peers is the id → address map of the cluster.
func (c *File) Peers() map[uint32]string {
	m := make(map[uint32]string, len(c.Nodes))
	for _, n := range c.Nodes {
		m[n.ID] = n.Addr
	}
	return m
}

// Node returns node id.
func (c *File) Node(id uint32) (Node, bool) {
	i := slices.IndexFunc(c.Nodes, func(n Node) bool { return n.ID == id })
	if i < 0 {
		return Node{}, false
	}
	return c.Nodes[i], true
}
