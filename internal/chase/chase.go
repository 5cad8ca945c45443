// Package chase builds linked lists for the prebuilt pointer-chase kernel
// (testdata/chase.c) spread over several nodes, and computes in Go what a
// walk over them must return. The demo, the tests and the benchmarks share
// it.
package chase

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
)

// End is the key that ends a list (CHASE_END in chase.c).
const End = ^uint64(0)

// ElemSize is the size of one list element: {next key, value}.
const ElemSize = 16

// Key names element index on node: node in the high 32 bits.
func Key(node, index uint32) uint64 { return uint64(node)<<32 | uint64(index) }

// Walk mirrors struct walk of chase.c, the kernel's argument and reply.
type Walk struct {
	Key, Remaining, Hops, Sum uint64
}

// Size is the encoded size of a Walk.
const Size = 32

// Bytes encodes w as the kernel reads it.
func (w Walk) Bytes() []byte {
	b := make([]byte, Size)
	binary.LittleEndian.PutUint64(b, w.Key)
	binary.LittleEndian.PutUint64(b[8:], w.Remaining)
	binary.LittleEndian.PutUint64(b[16:], w.Hops)
	binary.LittleEndian.PutUint64(b[24:], w.Sum)
	return b
}

// Parse decodes a kernel reply.
func Parse(b []byte) (Walk, error) {
	if len(b) != Size {
		return Walk{}, fmt.Errorf("chase: reply of %d bytes, want %d", len(b), Size)
	}
	le := binary.LittleEndian
	return Walk{le.Uint64(b), le.Uint64(b[8:]), le.Uint64(b[16:]), le.Uint64(b[24:])}, nil
}

// List is a cyclic linked list whose elements are placed at random on
// nodes: Regions[node] is the "chase" region to register there.
type List struct {
	Nodes   []uint32
	Regions map[uint32][]byte
	Head    uint64   // key of the first element
	Order   []uint64 // keys in list order
}

// New places elems elements on nodes at random (seeded), links them into
// one cycle in random order, and gives element i the value 3*i+1.
func New(nodes []uint32, elems int, seed uint64) *List {
	r := rand.New(rand.NewPCG(seed, 0x6263736869702121))
	l := &List{Nodes: nodes, Regions: map[uint32][]byte{}}
	counts := map[uint32]uint32{}
	keys := make([]uint64, elems)
	for i := range keys {
		nd := nodes[r.IntN(len(nodes))]
		keys[i] = Key(nd, counts[nd])
		counts[nd]++
	}
	r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	for _, nd := range nodes {
		l.Regions[nd] = make([]byte, ElemSize*max(counts[nd], 1))
	}
	for i, k := range keys {
		next := keys[(i+1)%len(keys)]
		reg := l.Regions[uint32(k>>32)]
		off := ElemSize * uint32(k)
		binary.LittleEndian.PutUint64(reg[off:], next)
		binary.LittleEndian.PutUint64(reg[off+8:], value(k))
	}
	l.Head, l.Order = keys[0], keys
	return l
}

func value(k uint64) uint64 { return (k>>32)*1_000_003 + uint64(uint32(k))*3 + 1 }

// Expect is the Walk the kernel must reply after following links links
// from the head: the key it stopped at, the node-to-node moves and the sum.
func (l *List) Expect(links int) Walk {
	w := Walk{Key: l.Head}
	for i := 0; i < links; i++ {
		k := l.Order[i%len(l.Order)]
		w.Sum += value(k)
		next := l.Order[(i+1)%len(l.Order)]
		if i+1 < links && next>>32 != k>>32 {
			w.Hops++
		}
		w.Key = next
	}
	return w
}
