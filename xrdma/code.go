package xrdma

import (
	"crypto/ed25519"
	"debug/elf"
	"fmt"
	"sync/atomic"
	"time"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/kernels"
	"github.com/bcship/bcship/toolchain"
)

// Code is one operation's kernel: a bundle with the prebuilt objects for
// every triple bcship has kernels for, signed, and the same code as an AM
// handler. The kernel's name is also its entry and its handler name.
type Code struct {
	Name   string
	Bundle *bundle.Bundle
	Hash   bundle.Digest

	key     ed25519.PrivateKey
	objects map[string][]byte // triple → object
	cold    atomic.Int64      // variants made by NextCold
}

// machines are the architectures package kernels has objects for.
var machines = []elf.Machine{elf.EM_X86_64, elf.EM_AARCH64}

// LoadCode wraps the prebuilt kernel name into a bundle signed with key;
// nil key leaves it unsigned, which is enough for AM handlers (local code
// is trusted).
func LoadCode(name string, key ed25519.PrivateKey) (*Code, error) {
	c := &Code{Name: name, key: key, objects: map[string][]byte{}}
	for _, m := range machines {
		obj, err := kernels.Object(name, m)
		if err != nil {
			return nil, err
		}
		triple, ok := toolchain.TripleFor(m)
		if !ok {
			return nil, fmt.Errorf("%w: no triple for %v", ErrParam, m)
		}
		c.objects[triple] = obj
	}
	b, err := c.variant(name)
	if err != nil {
		return nil, err
	}
	c.Bundle, c.Hash = b, b.Hash()
	return c, nil
}

// Cold returns the same objects under another name, so under another code
// hash that no node has cached: shipping it measures a first run. Each i
// gives a distinct hash.
func (c *Code) Cold(i int) (*bundle.Bundle, error) {
	return c.variant(fmt.Sprintf("%s-cold-%d", c.Name, i))
}

// NextCold makes the next cold variant (Cold) and adds it to origin
// (Node.AddCode), so that a run shipping it measures the transfer and the
// loading at the nodes, not the origin's encoding of the bundle.
func (c *Code) NextCold(origin *bc.Node) (*bundle.Bundle, error) {
	b, err := c.Cold(int(c.cold.Add(1)))
	if err != nil {
		return nil, err
	}
	if _, err := origin.AddCode(b); err != nil {
		return nil, err
	}
	return b, nil
}

func (c *Code) variant(name string) (*bundle.Bundle, error) {
	b := bundle.New(name, []string{c.Name}, 0)
	// A fixed creation time keeps the hash the same from run to run.
	b.Created = time.Unix(0, 0).UTC()
	for t, obj := range c.objects {
		b.AddObject(t, obj)
	}
	if c.key != nil {
		if err := b.Sign(c.key); err != nil {
			return nil, err
		}
	}
	return b, nil
}
