package bundle

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"
)

// Bundle is a manifest and the blobs it references.
//
// The exported manifest fields may be edited, but objects and bitcode are
// changed only through AddObject and SetBitcode, which keep the hashes
// right. Marshal rejects a manifest that no longer matches the blobs.
type Bundle struct {
	Manifest
	blobs map[Digest][]byte
}

// New returns an empty bundle for the kernel name exporting entries, built
// by LLVM major version llvmVersion (0 if unknown). Created is the current
// time; set it for reproducible hashes.
func New(name string, entries []string, llvmVersion int) *Bundle {
	e := slices.Clone(entries)
	slices.Sort(e)
	return &Bundle{
		Manifest: Manifest{
			Format:      FormatVersion,
			Name:        name,
			Entries:     e,
			LLVMVersion: llvmVersion,
			Created:     time.Now().UTC().Truncate(time.Second),
		},
		blobs: make(map[Digest][]byte),
	}
}

// Wrap returns a one-triple bundle for a raw relocatable object, for code
// that was not built by bcship. The caller supplies the triple. The name is
// "raw-" and the first 12 hex digits of the object's sha256, there are no
// entries, and Created is the Unix epoch so that the same object always
// gets the same code hash.
func Wrap(obj []byte, triple string) *Bundle {
	sum := sha256.Sum256(obj)
	b := New("raw-"+hex.EncodeToString(sum[:6]), nil, 0)
	b.Created = time.Unix(0, 0).UTC()
	b.AddObject(triple, obj)
	return b
}

// AddObject sets the object for triple to a copy of obj, replacing any
// previous one. It drops the signature, which no longer matches. Marshal
// reports a malformed triple or an empty object.
func (b *Bundle) AddObject(triple string, obj []byte) {
	d := b.put(obj)
	o := Object{Triple: triple, SHA256: d, Size: int64(len(obj))}
	// Search linearly: callers may have reordered Objects.
	if i := slices.IndexFunc(b.Objects, func(o Object) bool { return o.Triple == triple }); i >= 0 {
		old := b.Objects[i].SHA256
		b.Objects[i] = o
		b.prune(old)
	} else {
		i, _ := slices.BinarySearchFunc(b.Objects, triple, func(o Object, t string) int { return cmp.Compare(o.Triple, t) })
		b.Objects = slices.Insert(b.Objects, i, o)
	}
	b.Signature = nil
}

// SetBitcode sets the LLVM bitcode to a copy of bc; empty bc removes it. It
// drops the signature, which no longer matches.
func (b *Bundle) SetBitcode(bc []byte) {
	old := b.Manifest.Bitcode
	b.Manifest.Bitcode = nil
	if len(bc) > 0 {
		b.Manifest.Bitcode = &Blob{SHA256: b.put(bc), Size: int64(len(bc))}
	}
	if old != nil {
		b.prune(old.SHA256)
	}
	b.Signature = nil
}

// Object returns a copy of the object for triple.
func (b *Bundle) Object(triple string) ([]byte, bool) {
	for _, o := range b.Objects {
		if o.Triple == triple {
			return b.blob(o.SHA256)
		}
	}
	return nil, false
}

// Bitcode returns a copy of the LLVM bitcode. (The method hides the
// manifest's field of the same name; that is b.Manifest.Bitcode.)
func (b *Bundle) Bitcode() ([]byte, bool) {
	if b.Manifest.Bitcode == nil {
		return nil, false
	}
	return b.blob(b.Manifest.Bitcode.SHA256)
}

// Hash returns the bundle's code hash: the sha256 of the canonical manifest
// bytes, which leave out the signature.
func (b *Bundle) Hash() Digest {
	return sha256.Sum256(b.encode(false))
}

func (b *Bundle) put(content []byte) Digest {
	d := Digest(sha256.Sum256(content))
	if b.blobs == nil {
		b.blobs = make(map[Digest][]byte)
	}
	if _, ok := b.blobs[d]; !ok {
		b.blobs[d] = bytes.Clone(content)
	}
	return d
}

func (b *Bundle) blob(d Digest) ([]byte, bool) {
	c, ok := b.blobs[d]
	if !ok {
		return nil, false
	}
	return bytes.Clone(c), true
}

// prune drops the blob d unless the manifest still references it.
func (b *Bundle) prune(d Digest) {
	if _, ok := references(&b.Manifest)[d]; !ok {
		delete(b.blobs, d)
	}
}
