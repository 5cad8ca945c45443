package xrdma

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/bundle"
)

// GatherRegion is the region gather.c reads.
const GatherRegion = "gather"

// MaxGather is the most indices gather.c takes in one call; larger groups
// are split.
const MaxGather = 4096

// GetWindow bounds the GETs a GET gather keeps outstanding: the indices are
// independent, so, as an RDMA client posts many READs at once, the origin
// pipelines them rather than paying a round trip each in turn.
const GetWindow = 64

// Ref names one value: index Index of node Node's "gather" region.
type Ref struct {
	Node  uint32
	Index uint64
}

// GatherData is a "gather" region of 64-bit values on each data node.
type GatherData struct {
	Nodes   []uint32
	PerNode int
	Regions map[uint32][]byte
}

// NewGatherData gives each node perNode values.
func NewGatherData(nodes []uint32, perNode int, seed uint64) (*GatherData, error) {
	if len(nodes) == 0 || perNode < 1 {
		return nil, fmt.Errorf("%w: %d values on %d nodes", ErrParam, perNode, len(nodes))
	}
	r := rand.New(rand.NewPCG(seed, 0x676174686572))
	g := &GatherData{Nodes: slices.Clone(nodes), PerNode: perNode, Regions: map[uint32][]byte{}}
	for _, nd := range nodes {
		reg := make([]byte, 8*perNode)
		for i := range perNode {
			binary.LittleEndian.PutUint64(reg[8*i:], r.Uint64())
		}
		g.Regions[nd] = reg
	}
	return g, nil
}

// Install registers each target's values as its "gather" region.
func (g *GatherData) Install(ts []Target) error {
	for _, t := range ts {
		r, ok := g.Regions[t.ID()]
		if !ok {
			return fmt.Errorf("%w: node %d holds no gather values", ErrParam, t.ID())
		}
		if err := t.RegisterRegion(GatherRegion, r); err != nil {
			return err
		}
	}
	return nil
}

// Refs returns count references spread over the nodes at random (seeded).
func (g *GatherData) Refs(count int, seed uint64) []Ref {
	r := rand.New(rand.NewPCG(seed, 0x72656673))
	refs := make([]Ref, count)
	for i := range refs {
		refs[i] = Ref{Node: g.Nodes[r.IntN(len(g.Nodes))], Index: uint64(r.IntN(g.PerNode))}
	}
	return refs
}

// Expect is the values refs name, computed in Go.
func (g *GatherData) Expect(refs []Ref) []uint64 {
	vs := make([]uint64, len(refs))
	for i, rf := range refs {
		vs[i] = binary.LittleEndian.Uint64(g.Regions[rf.Node][8*rf.Index:])
	}
	return vs
}

// group is the part of a gather one kernel call serves.
type group struct {
	node uint32
	pos  []int // positions in the result
	arg  []byte
}

// Gather fetches sets of scattered values: shipped and AM gathers send one
// call per owner (at most MaxGather indices each), all at once, and each
// owner replies with all its values; GET gathers send one GET per index,
// GetWindow at a time.
type Gather struct {
	c      caller
	sets   [][]Ref
	groups [][]group
	want   [][]uint64
}

// NewGather prepares gathers of the given reference sets from origin.
func NewGather(origin *bc.Node, code *Code, g *GatherData, sets [][]Ref) (*Gather, error) {
	if len(sets) == 0 {
		return nil, fmt.Errorf("%w: no reference sets", ErrParam)
	}
	c, err := newCaller(origin, code)
	if err != nil {
		return nil, err
	}
	ga := &Gather{c: c, sets: sets}
	for _, refs := range sets {
		if len(refs) == 0 {
			return nil, fmt.Errorf("%w: empty reference set", ErrParam)
		}
		ga.want = append(ga.want, g.Expect(refs))
		ga.groups = append(ga.groups, groupRefs(refs))
	}
	return ga, nil
}

// groupRefs splits refs by owner, in order of first appearance, into
// calls of at most MaxGather indices.
func groupRefs(refs []Ref) []group {
	var gs []group
	open := map[uint32]int{} // node → index of its group still filling
	for p, rf := range refs {
		gi, ok := open[rf.Node]
		if !ok || len(gs[gi].pos) == MaxGather {
			gs = append(gs, group{node: rf.Node, arg: make([]byte, 8, 8+8*min(len(refs), MaxGather))})
			gi = len(gs) - 1
			open[rf.Node] = gi
		}
		gs[gi].pos = append(gs[gi].pos, p)
		gs[gi].arg = binary.LittleEndian.AppendUint64(gs[gi].arg, rf.Index)
	}
	for i := range gs {
		binary.LittleEndian.PutUint64(gs[i].arg, uint64(len(gs[i].pos)))
	}
	return gs
}

// Name is "gather".
func (*Gather) Name() string { return "gather" }

// Run gathers set i (modulo the sets) in mode m and checks the answer.
func (ga *Gather) Run(ctx context.Context, m Mode, i int) error {
	return ga.check(ctx, m, nil, i)
}

// RunCold gathers set i shipping code.
func (ga *Gather) RunCold(ctx context.Context, code *bundle.Bundle, i int) error {
	return ga.check(ctx, Shipped, code, i)
}

func (ga *Gather) check(ctx context.Context, m Mode, cold *bundle.Bundle, i int) error {
	i %= len(ga.sets)
	vs, err := ga.Values(ctx, m, cold, i)
	if err != nil {
		return err
	}
	if !slices.Equal(vs, ga.want[i]) {
		if cold != nil {
			m = Cold
		}
		return &MismatchError{Op: "gather", Mode: m, Got: summary(vs), Want: summary(ga.want[i])}
	}
	return nil
}

func summary(vs []uint64) string {
	if len(vs) > 4 {
		return fmt.Sprintf("%d values %x…", len(vs), vs[:4])
	}
	return fmt.Sprintf("%d values %x", len(vs), vs)
}

// Values gathers set i once in mode m; cold, when not nil, is the code to
// ship in mode Shipped.
func (ga *Gather) Values(ctx context.Context, m Mode, cold *bundle.Bundle, i int) ([]uint64, error) {
	i %= len(ga.sets)
	out := make([]uint64, len(ga.sets[i]))
	if m == GET {
		return out, ga.getAll(ctx, ga.sets[i], out)
	}
	gs := ga.groups[i]
	errs := make([]error, len(gs))
	var wg sync.WaitGroup
	for gi := range gs {
		wg.Go(func() {
			g := &gs[gi]
			res, err := ga.c.call(ctx, m, cold, g.node, g.arg)
			if err != nil {
				errs[gi] = err
				return
			}
			rep := res.Reply()
			if len(rep) != 8*len(g.pos) {
				errs[gi] = fmt.Errorf("%w: node %d replied %d bytes for %d values", ErrBadReply, g.node, len(rep), len(g.pos))
				return
			}
			for k, p := range g.pos {
				out[p] = binary.LittleEndian.Uint64(rep[8*k:])
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// getAll reads each reference with one GET, GetWindow outstanding.
func (ga *Gather) getAll(ctx context.Context, refs []Ref, out []uint64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, GetWindow)
	var wg sync.WaitGroup
	for p, rf := range refs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			v, err := ga.c.origin.Get(ctx, rf.Node, GatherRegion, 8*rf.Index, 8)
			if err == nil && len(v) != 8 {
				err = fmt.Errorf("%w: GET of a value returned %d bytes", ErrBadReply, len(v))
			}
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
				return
			}
			out[p] = binary.LittleEndian.Uint64(v)
		})
	}
	wg.Wait()
	return first
}
