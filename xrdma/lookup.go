package xrdma

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/bundle"
)

// LookupRegion is the region lookup.c searches.
const LookupRegion = "htab"

// Layout of the "htab" region (struct htab and struct entry of lookup.c).
const (
	htabHeader = 16 // nbuckets, nentries
	entrySize  = 24 // key, value, next (index+1, 0 = end)
)

// Hash is lookup.c's hash function (Fibonacci hashing). A key lives on
// node Hash(key) % nodes, in bucket (Hash(key) / nodes) % nbuckets there.
func Hash(key uint64) uint64 { return key * 0x9e3779b97f4a7c15 }

// Query is lookup.c's argument and reply (struct query).
type Query struct {
	Key    uint64
	Probes uint64 // entries compared
	Value  uint64
	Found  uint64 // 1 when Key is present
}

// QuerySize is the encoded size of a Query.
const QuerySize = 32

// Bytes encodes q as the kernel reads it.
func (q Query) Bytes() []byte {
	b := make([]byte, QuerySize)
	le := binary.LittleEndian
	le.PutUint64(b, q.Key)
	le.PutUint64(b[8:], q.Probes)
	le.PutUint64(b[16:], q.Value)
	le.PutUint64(b[24:], q.Found)
	return b
}

// ParseQuery decodes a kernel reply.
func ParseQuery(b []byte) (Query, error) {
	if len(b) != QuerySize {
		return Query{}, fmt.Errorf("%w: lookup reply of %d bytes, want %d", ErrBadReply, len(b), QuerySize)
	}
	le := binary.LittleEndian
	return Query{le.Uint64(b), le.Uint64(b[8:]), le.Uint64(b[16:]), le.Uint64(b[24:])}, nil
}

// HashTable is a chained hash table spread over data nodes 0…N-1 (the
// owner function needs exactly those ids): every node has the same number
// of buckets, sized so that chains average Chain entries.
type HashTable struct {
	Nodes   int
	Buckets int
	Chain   int
	Regions map[uint32][]byte
	chains  map[uint32][][]uint64 // node → bucket → keys in chain order
	values  map[uint64]uint64
	keys    []uint64 // present keys, in insertion order
}

// NewHashTable inserts entries random keys (about entries/nodes per node)
// into a table over nodes data nodes whose chains average chain entries.
func NewHashTable(nodes, entries, chain int, seed uint64) (*HashTable, error) {
	if nodes < 1 || entries < nodes || chain < 1 || chain > entries {
		return nil, fmt.Errorf("%w: hash table of %d entries, chains of %d, on %d nodes", ErrParam, entries, chain, nodes)
	}
	r := rand.New(rand.NewPCG(seed, 0x6c6f6f6b7570))
	t := &HashTable{
		Nodes: nodes, Buckets: max(1, entries/nodes/chain), Chain: chain,
		Regions: map[uint32][]byte{}, chains: map[uint32][][]uint64{}, values: map[uint64]uint64{},
	}
	for nd := range uint32(nodes) {
		t.chains[nd] = make([][]uint64, t.Buckets)
	}
	count := map[uint32]int{}
	for len(t.keys) < entries {
		k := r.Uint64()
		if _, dup := t.values[k]; dup {
			continue
		}
		t.values[k] = r.Uint64()
		t.keys = append(t.keys, k)
		nd, b := t.place(k)
		// New entries go to the chain's head, as the region links them.
		t.chains[nd][b] = append([]uint64{k}, t.chains[nd][b]...)
		count[nd]++
	}
	le := binary.LittleEndian
	for nd := range uint32(nodes) {
		reg := make([]byte, htabHeader+8*t.Buckets+entrySize*count[nd])
		le.PutUint64(reg, uint64(t.Buckets))
		le.PutUint64(reg[8:], uint64(count[nd]))
		ents := reg[htabHeader+8*t.Buckets:]
		i := 0
		for b, keys := range t.chains[nd] {
			next := uint64(0)
			// Lay the chain out back to front so each entry can name the
			// next one's index.
			for j := len(keys) - 1; j >= 0; j-- {
				e := ents[entrySize*i:]
				le.PutUint64(e, keys[j])
				le.PutUint64(e[8:], t.values[keys[j]])
				le.PutUint64(e[16:], next)
				i++
				next = uint64(i)
			}
			le.PutUint64(reg[htabHeader+8*b:], next)
		}
		t.Regions[nd] = reg
	}
	return t, nil
}

// place is the owner and bucket of key.
func (t *HashTable) place(key uint64) (uint32, int) {
	h := Hash(key)
	return uint32(h % uint64(t.Nodes)), int((h / uint64(t.Nodes)) % uint64(t.Buckets))
}

// Install registers each target's part as its "htab" region. A process
// that serves some of the nodes installs only theirs.
func (t *HashTable) Install(ts []Target) error {
	for _, tg := range ts {
		r, ok := t.Regions[tg.ID()]
		if !ok {
			return fmt.Errorf("%w: node %d is not one of the table's nodes 0…%d", ErrParam, tg.ID(), t.Nodes-1)
		}
		if err := tg.RegisterRegion(LookupRegion, r); err != nil {
			return err
		}
	}
	return nil
}

// Expect is the answer to a lookup of key, computed in Go.
func (t *HashTable) Expect(key uint64) Query {
	nd, b := t.place(key)
	q := Query{Key: key}
	for _, k := range t.chains[nd][b] {
		q.Probes++
		if k == key {
			q.Value, q.Found = t.values[key], 1
			break
		}
	}
	return q
}

// Keys returns n keys to look up, drawn from the table at random (seeded),
// one in eight of them absent.
func (t *HashTable) Keys(n int, seed uint64) []uint64 {
	r := rand.New(rand.NewPCG(seed, 0x6b657973))
	ks := make([]uint64, n)
	for i := range ks {
		if i%8 == 7 {
			for {
				k := r.Uint64()
				if _, ok := t.values[k]; !ok {
					ks[i] = k
					break
				}
			}
			continue
		}
		ks[i] = t.keys[r.IntN(len(t.keys))]
	}
	return ks
}

// Lookup looks keys up: shipped and AM lookups run at the key's owner,
// which the origin computes, and walk the chain there; GET lookups read the
// bucket and then each entry of the chain, a round trip each (the origin
// reads every node's table header once, when the Lookup is made, as an
// RDMA client caches a remote table's geometry).
type Lookup struct {
	c       caller
	keys    []uint64
	want    []Query
	nodes   uint64
	buckets map[uint32]uint64 // per node, from its header
	entries map[uint32]uint64
}

// NewLookup prepares lookups of keys over t from origin.
func NewLookup(ctx context.Context, origin *bc.Node, code *Code, t *HashTable, keys []uint64) (*Lookup, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no keys to look up", ErrParam)
	}
	c, err := newCaller(origin, code)
	if err != nil {
		return nil, err
	}
	l := &Lookup{c: c, keys: keys, nodes: uint64(t.Nodes), buckets: map[uint32]uint64{}, entries: map[uint32]uint64{}}
	for _, k := range keys {
		l.want = append(l.want, t.Expect(k))
	}
	for nd := range uint32(t.Nodes) {
		h, err := origin.Get(ctx, nd, LookupRegion, 0, htabHeader)
		if err != nil {
			return nil, fmt.Errorf("reading node %d's table header: %w", nd, err)
		}
		l.buckets[nd] = binary.LittleEndian.Uint64(h)
		l.entries[nd] = binary.LittleEndian.Uint64(h[8:])
		if l.buckets[nd] == 0 {
			return nil, fmt.Errorf("%w: node %d's table has no buckets", ErrBadReply, nd)
		}
	}
	return l, nil
}

// Name is "lookup".
func (*Lookup) Name() string { return "lookup" }

// Run looks up key i (modulo the key set) in mode m and checks the answer.
func (l *Lookup) Run(ctx context.Context, m Mode, i int) error {
	return l.check(ctx, m, nil, i)
}

// RunCold looks up key i shipping code.
func (l *Lookup) RunCold(ctx context.Context, code *bundle.Bundle, i int) error {
	return l.check(ctx, Shipped, code, i)
}

func (l *Lookup) check(ctx context.Context, m Mode, cold *bundle.Bundle, i int) error {
	i %= len(l.keys)
	q, err := l.Query(ctx, m, cold, l.keys[i])
	if err != nil {
		return err
	}
	if q != l.want[i] {
		if cold != nil {
			m = Cold
		}
		return &MismatchError{Op: "lookup", Mode: m, Got: fmt.Sprintf("%+v", q), Want: fmt.Sprintf("%+v", l.want[i])}
	}
	return nil
}

// Query looks key up once in mode m; cold, when not nil, is the code to
// ship in mode Shipped.
func (l *Lookup) Query(ctx context.Context, m Mode, cold *bundle.Bundle, key uint64) (Query, error) {
	h := Hash(key)
	nd := uint32(h % l.nodes)
	if m != GET {
		res, err := l.c.call(ctx, m, cold, nd, Query{Key: key}.Bytes())
		if err != nil {
			return Query{}, err
		}
		return ParseQuery(res.Reply())
	}
	le := binary.LittleEndian
	nb, ne := l.buckets[nd], l.entries[nd]
	b, err := l.c.origin.Get(ctx, nd, LookupRegion, htabHeader+8*((h/l.nodes)%nb), 8)
	if err != nil {
		return Query{}, err
	}
	q := Query{Key: key}
	base := htabHeader + 8*nb
	// The same bounds as the kernel: a corrupt chain cannot loop forever.
	for i := le.Uint64(b); i != 0 && i <= ne && q.Probes <= ne; {
		e, err := l.c.origin.Get(ctx, nd, LookupRegion, base+entrySize*(i-1), entrySize)
		if err != nil {
			return Query{}, err
		}
		q.Probes++
		if le.Uint64(e) == key {
			q.Value, q.Found = le.Uint64(e[8:]), 1
			break
		}
		i = le.Uint64(e[16:])
	}
	return q, nil
}
