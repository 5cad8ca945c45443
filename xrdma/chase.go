package xrdma

import (
	"context"
	"encoding/binary"
	"fmt"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/internal/chase"
)

// Walk is the chase kernel's argument and reply (struct walk of chase.c):
// the key to visit next, links still to follow, node-to-node moves so far
// and the sum of the visited values.
type Walk = chase.Walk

// ChaseRegion is the region chase.c walks.
const ChaseRegion = "chase"

// ChaseList is a cyclic linked list whose elements are placed on the data
// nodes at random (seeded), in random order: each link leads to a random
// node, so a walk over N nodes moves between nodes on (N-1)/N of its links.
type ChaseList struct {
	l *chase.List
}

// NewChaseList places elems elements on nodes.
func NewChaseList(nodes []uint32, elems int, seed uint64) (*ChaseList, error) {
	if len(nodes) == 0 || elems < 1 {
		return nil, fmt.Errorf("%w: chase list of %d elements on %d nodes", ErrParam, elems, len(nodes))
	}
	return &ChaseList{l: chase.New(nodes, elems, seed)}, nil
}

// Install registers each target's part of the list as its "chase" region.
func (cl *ChaseList) Install(ts []Target) error {
	for _, t := range ts {
		r, ok := cl.l.Regions[t.ID()]
		if !ok {
			return fmt.Errorf("%w: node %d holds no part of the list", ErrParam, t.ID())
		}
		if err := t.RegisterRegion(ChaseRegion, r); err != nil {
			return err
		}
	}
	return nil
}

// Head is the key of the list's first element.
func (cl *ChaseList) Head() uint64 { return cl.l.Head }

// Expect is the walk after following links links from the head, computed
// in Go.
func (cl *ChaseList) Expect(links int) Walk {
	w := cl.l.Expect(links)
	w.Remaining = 0
	return w
}

func owner(key uint64) uint32 { return uint32(key >> 32) }

// Chase walks links links of a ChaseList from its head.
//
// Shipped and AM walks forward themselves from node to node and reply
// straight to the origin; a forward uses one unit of the one-byte TTL, so a
// walk of more than MaxTTL+1 links runs as segments of MaxTTL+1 links, each
// started by the origin at the owner of the next key (one extra message
// per 256 links). GET walks read each element with one Node.Get.
type Chase struct {
	c     caller
	list  *ChaseList
	links int
	want  Walk
}

// NewChase prepares walks of links links over list from origin. The data
// nodes must hold the list (ChaseList.Install) and, for AM, the handler
// (Code.InstallAM).
func NewChase(origin *bc.Node, code *Code, list *ChaseList, links int) (*Chase, error) {
	if links < 1 {
		return nil, fmt.Errorf("%w: chase of %d links", ErrParam, links)
	}
	c, err := newCaller(origin, code)
	if err != nil {
		return nil, err
	}
	return &Chase{c: c, list: list, links: links, want: list.Expect(links)}, nil
}

// Name is "chase".
func (*Chase) Name() string { return "chase" }

// Want is the walk every mode must return.
func (ch *Chase) Want() Walk { return ch.want }

// Run walks once in mode m and checks the answer. Every query is the same
// walk; i is ignored.
func (ch *Chase) Run(ctx context.Context, m Mode, _ int) error {
	return ch.check(ctx, m, nil)
}

// RunCold walks once shipping code.
func (ch *Chase) RunCold(ctx context.Context, code *bundle.Bundle, _ int) error {
	return ch.check(ctx, Shipped, code)
}

func (ch *Chase) check(ctx context.Context, m Mode, cold *bundle.Bundle) error {
	w, err := ch.Walk(ctx, m, cold)
	if err != nil {
		return err
	}
	if w != ch.want {
		if cold != nil {
			m = Cold
		}
		return &MismatchError{Op: "chase", Mode: m, Got: fmt.Sprintf("%+v", w), Want: fmt.Sprintf("%+v", ch.want)}
	}
	return nil
}

// Walk walks once in mode m and returns the kernel's final walk state (or
// the same computed from GETs). cold, when not nil, is the code to ship in
// mode Shipped.
func (ch *Chase) Walk(ctx context.Context, m Mode, cold *bundle.Bundle) (Walk, error) {
	if m == GET {
		return ch.walkGET(ctx)
	}
	w := Walk{Key: ch.list.Head()}
	left := ch.links
	for left > 0 && w.Key != chase.End {
		seg := min(left, MaxTTL+1)
		w.Remaining = uint64(seg)
		res, err := ch.c.call(ctx, m, cold, owner(w.Key), w.Bytes())
		if err != nil {
			return Walk{}, err
		}
		// A cold walk keeps its code for every segment: Invoke sends only
		// the hash to nodes that already have it.
		if w, err = chase.Parse(res.Reply()); err != nil {
			return Walk{}, fmt.Errorf("%w: %v", ErrBadReply, err)
		}
		left -= seg
		if left > 0 && owner(w.Key) != res.Node {
			w.Hops++ // the move the next segment starts with
		}
	}
	return w, nil
}

// walkGET reads every element from the origin: one round trip per link.
func (ch *Chase) walkGET(ctx context.Context) (Walk, error) {
	w := Walk{Key: ch.list.Head()}
	prev := owner(w.Key)
	for i := 0; i < ch.links && w.Key != chase.End; i++ {
		nd := owner(w.Key)
		if nd != prev {
			w.Hops++
		}
		e, err := ch.c.origin.Get(ctx, nd, ChaseRegion, chase.ElemSize*uint64(uint32(w.Key)), chase.ElemSize)
		if err != nil {
			return Walk{}, err
		}
		if len(e) != chase.ElemSize {
			return Walk{}, fmt.Errorf("%w: GET of an element returned %d bytes", ErrBadReply, len(e))
		}
		w.Key = binary.LittleEndian.Uint64(e)
		w.Sum += binary.LittleEndian.Uint64(e[8:])
		prev = nd
	}
	return w, nil
}
