package xrdma

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/bundle"
)

// MaxTTL is the forward budget the origin gives each invocation: the wire
// carries it in one byte. A walk longer than MaxTTL+1 links is run as
// segments that each start at the origin (see Chase).
const MaxTTL = 255

// ClusterConfig configures an in-process cluster.
type ClusterConfig struct {
	// Nodes is the number of data nodes (ids 0…Nodes-1); the origin is
	// node Nodes.
	Nodes int
	// BusyPoll makes every node's transport spin before parking.
	BusyPoll bool
	// RDMADevice, when set (e.g. "rxe0"), runs every node on the RDMA
	// transport over that device (bcship.Config.RDMADevice): messages over
	// RC queue pairs, and the origin's GETs one-sided RDMA READs. All the
	// nodes share the device; their control connections stay on loopback.
	RDMADevice string
	// Logger receives node events; default discards.
	Logger *slog.Logger
}

// Cluster is an in-process cluster on loopback TCP (or on RDMA, with
// ClusterConfig.RDMADevice): data nodes and one
// origin that holds no data. Every data node trusts the cluster's signing
// key (Key), with which Code is signed.
type Cluster struct {
	Data   []*bc.Node
	Origin *bc.Node
	Key    ed25519.PrivateKey
}

// StartCluster starts the nodes and connects them: data nodes know each
// other; the origin knows them all, and none of them knows the origin, so
// bc_nodes counts data nodes only (results reach the origin over the
// connections it opened).
func StartCluster(ctx context.Context, cfg ClusterConfig) (_ *Cluster, err error) {
	if cfg.Nodes < 1 || cfg.Nodes > 1024 {
		return nil, fmt.Errorf("%w: %d data nodes (1…1024)", ErrParam, cfg.Nodes)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pub, priv, err := bundle.GenerateKey()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Key: priv}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for id := range cfg.Nodes + 1 {
		n, err := bc.NewNode(bc.Config{
			ID: uint32(id), Listen: "127.0.0.1:0", Trust: []ed25519.PublicKey{pub},
			DefaultTTL: MaxTTL, BusyPoll: cfg.BusyPoll, Logger: log, RDMADevice: cfg.RDMADevice,
		})
		if err != nil {
			return nil, err
		}
		if id == cfg.Nodes {
			c.Origin = n
		} else {
			c.Data = append(c.Data, n)
		}
		if err := n.Start(ctx); err != nil {
			return nil, err
		}
	}
	for _, a := range c.Data {
		for _, b := range c.Data {
			a.SetPeer(b.ID(), b.Addr().String())
		}
		c.Origin.SetPeer(a.ID(), a.Addr().String())
	}
	// Open every connection now, so that no measurement pays for a dial.
	for _, a := range c.Data {
		if _, err := c.Origin.Ping(ctx, a.ID()); err != nil {
			return nil, fmt.Errorf("origin to node %d: %w", a.ID(), err)
		}
		for _, b := range c.Data {
			if a != b {
				if _, err := a.Ping(ctx, b.ID()); err != nil {
					return nil, fmt.Errorf("node %d to node %d: %w", a.ID(), b.ID(), err)
				}
			}
		}
	}
	return c, nil
}

// FramesRecv is the number of frames the data nodes have received, HELLO
// heartbeats included: a GET that leaves it unchanged was one-sided.
func (c *Cluster) FramesRecv() uint64 {
	var f uint64
	for _, n := range c.Data {
		f += n.Stats().Transport.FramesRecv
	}
	return f
}

// WaitOneSided waits until the origin reads region on every data node
// one-sided: a GET of its first bytes returns what the node holds and the
// node receives no frame meanwhile. On the RDMA transport a region
// registered after the connections came up reaches the origin
// asynchronously, and until then GETs go as messages; call it after
// installing data there. It fails when that does not happen within 10 s
// (a TCP cluster never gets there).
func (c *Cluster) WaitOneSided(ctx context.Context, region string) error {
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range c.Data {
		want := n.Region(region)
		k := min(len(want), 8)
		if k == 0 {
			return fmt.Errorf("%w: node %d has no region %q", ErrParam, n.ID(), region)
		}
		for {
			f0 := n.Stats().Transport.FramesRecv
			got, err := c.Origin.Get(ctx, n.ID(), region, 0, uint32(k))
			if err != nil {
				return fmt.Errorf("node %d: %w", n.ID(), err)
			}
			if n.Stats().Transport.FramesRecv == f0 && bytes.Equal(got, want[:k]) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node %d: GETs of region %q still go as messages after 10 s", n.ID(), region)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return nil
}

// IDs are the data nodes' ids.
func (c *Cluster) IDs() []uint32 {
	ids := make([]uint32, len(c.Data))
	for i, n := range c.Data {
		ids[i] = n.ID()
	}
	return ids
}

// Targets are the data nodes as places to install data and handlers.
func (c *Cluster) Targets() []Target {
	ts := make([]Target, len(c.Data))
	for i, n := range c.Data {
		ts[i] = n
	}
	return ts
}

// Stats sums the counters of every node, the origin's included.
func (c *Cluster) Stats() bc.Stats {
	var s bc.Stats
	for _, n := range append([]*bc.Node{c.Origin}, c.Data...) {
		t := n.Stats()
		s.Transport.BytesSent += t.Transport.BytesSent
		s.Transport.BytesRecv += t.Transport.BytesRecv
		s.Transport.FramesSent += t.Transport.FramesSent
		s.Transport.FramesRecv += t.Transport.FramesRecv
		s.Ships += t.Ships
		s.ShipBytes += t.ShipBytes
		s.ShipsRecv += t.ShipsRecv
		s.NeedCode += t.NeedCode
		s.Invocations += t.Invocations
		s.CacheHits += t.CacheHits
		s.CacheMisses += t.CacheMisses
	}
	return s
}

// Close stops every node.
func (c *Cluster) Close() error {
	var errs []error
	for _, n := range append([]*bc.Node{c.Origin}, c.Data...) {
		if n != nil {
			errs = append(errs, n.Close())
		}
	}
	return errors.Join(errs...)
}

// Target is a data node as seen by the code that sets an operation up: it
// holds regions and predeployed handlers. *bcship.Node is one.
type Target interface {
	ID() uint32
	RegisterRegion(name string, data []byte) error
	RegisterAM(name string, code *bundle.Bundle, entry string) error
}

// InstallAM predeploys code on every target as the AM handler c.Name.
func (c *Code) InstallAM(ts []Target) error {
	for _, t := range ts {
		if err := t.RegisterAM(c.Name, c.Bundle, c.Name); err != nil {
			return fmt.Errorf("node %d: %w", t.ID(), err)
		}
	}
	return nil
}
