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
	n, err := NewNode(Config{ID: 1, Insecure: true, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
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
