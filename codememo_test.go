package bcship

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/bcship/bcship/bundle"
)

// TestCodeMemoFields pins the manifest fields codeMemo compares: a field
// added to bundle.Manifest may be covered by the hash, and the memo must
// learn about it.
func TestCodeMemoFields(t *testing.T) {
	var got []string
	for f := range reflect.TypeFor[bundle.Manifest]().Fields() {
		got = append(got, f.Name)
	}
	want := []string{"Format", "Name", "Entries", "Objects", "Bitcode", "LLVMVersion", "Created", "Signature"}
	if !slices.Equal(got, want) {
		t.Fatalf("bundle.Manifest fields %v, codeMemo knows %v: update codeMemo.hashOf", got, want)
	}
}

// TestCodeMemo: AddCode with the same bundle hashes it once, and hashes
// again whenever a field the hash covers changed.
func TestCodeMemo(t *testing.T) {
	n := idleNode(t, 1)
	b := chaseCode(t)
	check := func(what string) {
		t.Helper()
		h, err := n.AddCode(b)
		if err != nil {
			t.Fatal(err)
		}
		if want := b.Hash(); h != want {
			t.Fatalf("%s: AddCode = %s, want %s", what, h, want)
		}
	}
	check("first")
	check("again")
	if n := testing.AllocsPerRun(100, func() { n.AddCode(b) }); n != 0 {
		t.Errorf("AddCode of the same bundle: %v allocations", n)
	}
	b.Name += "-renamed"
	check("name")
	b.Created = b.Created.Add(time.Hour)
	check("created")
	b.LLVMVersion++
	check("llvm")
	b.Entries = append(b.Entries, "other")
	check("entries")
	b.AddObject("riscv64-linux-gnu", []byte("obj"))
	check("objects")
	b.SetBitcode([]byte("bc"))
	check("bitcode")
	b.SetBitcode([]byte("bc2"))
	check("bitcode changed")
	b.Format++ // AddCode would refuse to encode it
	if _, ok := n.lastCode.Load().hashOf(b); ok {
		t.Fatal("the memo answered for a bundle whose format changed")
	}
}

// The invoke path reads the store and the shipped-to set without a lock;
// they must still follow every change. Re-signing a bundle in place (the
// memo matches it: the signature is not hashed) replaces the stored bundle
// and ships it again; a peer that went down is shipped to again.
func TestStoreAndKnownFollowChanges(t *testing.T) {
	n := idleNode(t, 1)
	b := chaseCode(t)
	sign := func() *bundle.Signature {
		t.Helper()
		_, priv, err := bundle.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Sign(priv); err != nil {
			t.Fatal(err)
		}
		return b.Signature
	}
	sign()
	h, err := n.AddCode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !n.mustShip(2, h) {
		t.Fatal("code never shipped to node 2 needs no shipping")
	}
	n.markKnown(2, h)
	n.markKnown(3, h)
	if n.mustShip(2, h) || n.mustShip(3, h) {
		t.Fatal("code shipped to nodes 2 and 3 must be shipped again")
	}
	if n.mustShip(2, bundle.Digest{1}) {
		t.Fatal("code this node does not have must be shipped")
	}

	sig := sign()
	if h2, err := n.AddCode(b); err != nil || h2 != h {
		t.Fatalf("AddCode after re-signing = %s, %v; want %s", h2, err, h)
	}
	if s := n.lookupStore(h); s == nil || !sameSignature(s.sig, sig) {
		t.Fatal("the store kept the old signature")
	}
	if !n.mustShip(2, h) || !n.mustShip(3, h) {
		t.Fatal("re-signed code is not shipped again")
	}
	if n := testing.AllocsPerRun(100, func() { n.AddCode(b) }); n != 0 {
		t.Errorf("AddCode of the re-signed bundle again: %v allocations", n)
	}

	n.markKnown(2, h)
	n.markKnown(3, h)
	if n.mustShip(3, h) { // and mustShip remembers this answer
		t.Fatal("code shipped to node 3 must be shipped again")
	}
	n.peerDown(3, ErrPeerDown)
	if n.mustShip(2, h) || !n.mustShip(3, h) {
		t.Fatalf("after node 3 went down: mustShip(2) = %v, mustShip(3) = %v; want false, true",
			n.mustShip(2, h), n.mustShip(3, h))
	}
}
