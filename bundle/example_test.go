package bundle_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/bcship/bcship/bundle"
)

func ExampleNew() {
	b := bundle.New("saxpy", []string{"saxpy"}, 19)
	b.Created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // for a reproducible hash
	b.AddObject("x86_64-linux-gnu", []byte("x86_64 object"))
	b.AddObject("aarch64-linux-gnu", []byte("aarch64 object"))
	b.SetBitcode([]byte("bitcode"))

	data, err := b.Marshal()
	if err != nil {
		log.Fatal(err)
	}
	r, err := bundle.Read(data)
	if err != nil {
		log.Fatal(err)
	}
	obj, ok := r.Object("aarch64-linux-gnu")
	fmt.Printf("%s %q %v\n", r.Name, obj, ok)
	for _, o := range r.Objects {
		fmt.Println(o.Triple, o.Size)
	}
	// Output:
	// saxpy "aarch64 object" true
	// aarch64-linux-gnu 14
	// x86_64-linux-gnu 13
}

func ExampleBundle_Hash() {
	b := bundle.Wrap([]byte("relocatable object"), "x86_64-linux-gnu")
	before := b.Hash()
	_, priv, err := bundle.GenerateKey()
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Sign(priv); err != nil {
		log.Fatal(err)
	}
	fmt.Println("same hash after signing:", b.Hash() == before)
	// Output:
	// same hash after signing: true
}

func ExampleBundle_Verify() {
	pub, priv, err := bundle.GenerateKey()
	if err != nil {
		log.Fatal(err)
	}
	b := bundle.Wrap([]byte("relocatable object"), "x86_64-linux-gnu")
	if err := b.Sign(priv); err != nil {
		log.Fatal(err)
	}
	data, err := b.Marshal()
	if err != nil {
		log.Fatal(err)
	}

	// On the node: structure and hashes first, then the signer.
	r, err := bundle.Read(data)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Verify([]ed25519.PublicKey{pub}))
	fmt.Println(errors.Is(r.Verify(nil), bundle.ErrUntrusted))
	// Output:
	// <nil>
	// true
}

func ExampleWrap() {
	b := bundle.Wrap([]byte("relocatable object"), "aarch64-linux-gnu")
	fmt.Println(b.Name, len(b.Objects), b.Created.Unix())
	// Output:
	// raw-6556937938b4 1 0
}

func ExampleReadLimit() {
	b := bundle.Wrap(make([]byte, 1<<20), "x86_64-linux-gnu")
	data, err := b.Marshal()
	if err != nil {
		log.Fatal(err)
	}
	_, err = bundle.ReadLimit(data, 64<<10)
	fmt.Println(errors.Is(err, bundle.ErrTooLarge))
	// Output:
	// true
}

func ExampleWriteKeyFiles() {
	dir, err := os.MkdirTemp("", "keys")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	_, priv, err := bundle.GenerateKey()
	if err != nil {
		log.Fatal(err)
	}
	if err := bundle.WriteKeyFiles(dir, "builder", priv); err != nil {
		log.Fatal(err)
	}
	signer, err := bundle.LoadPrivateKey(filepath.Join(dir, "builder.key"))
	if err != nil {
		log.Fatal(err)
	}
	trusted, err := bundle.LoadTrustDir(dir)
	if err != nil {
		log.Fatal(err)
	}

	b := bundle.Wrap([]byte("relocatable object"), "x86_64-linux-gnu")
	if err := b.Sign(signer); err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(trusted), b.Verify(trusted))
	// Output:
	// 1 <nil>
}
