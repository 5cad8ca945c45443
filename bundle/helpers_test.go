package bundle_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/bcship/bcship/bundle"
	"github.com/klauspost/compress/zstd"
)

// created is a fixed creation time so that hashes are reproducible.
var created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testBundle returns a small bundle with two triples and bitcode.
func testBundle(tb testing.TB) *bundle.Bundle {
	tb.Helper()
	b := bundle.New("saxpy", []string{"saxpy", "dot"}, 19)
	b.Created = created
	b.AddObject("x86_64-linux-gnu", []byte("\x7fELF x86_64 object for saxpy and dot"))
	b.AddObject("aarch64-linux-gnu", []byte("\x7fELF aarch64 object for saxpy and dot"))
	b.SetBitcode([]byte("BC\xc0\xde bitcode for saxpy and dot"))
	return b
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// testKey returns a deterministic key pair; n picks which.
func testKey(n byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize))
	return priv.Public().(ed25519.PublicKey), priv
}

func marshal(tb testing.TB, b *bundle.Bundle) []byte {
	tb.Helper()
	data, err := b.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func signedFile(tb testing.TB) (file []byte, pub ed25519.PublicKey) {
	tb.Helper()
	b := testBundle(tb)
	pub, priv := testKey(1)
	if err := b.Sign(priv); err != nil {
		tb.Fatal(err)
	}
	return marshal(tb, b), pub
}

var sentinels = []error{
	bundle.ErrCorrupt, bundle.ErrTruncated, bundle.ErrVersion, bundle.ErrHashMismatch,
	bundle.ErrTooLarge, bundle.ErrInvalid,
}

// checkTyped fails unless err is a *FormatError wrapping one of the sentinels.
func checkTyped(tb testing.TB, err error) {
	tb.Helper()
	var fe *bundle.FormatError
	if !errors.As(err, &fe) {
		tb.Fatalf("error %v (%T) is not a *FormatError", err, err)
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	tb.Fatalf("error %v wraps none of the sentinels", err)
}

// The helpers below re-implement the container from the package
// documentation, so the tests also check that the documentation is right.

// seal wraps compressed payload bytes in a header with the right crc.
func seal(compressed []byte) []byte {
	out := make([]byte, 16, 16+len(compressed))
	copy(out, "\x7fBCB")
	binary.LittleEndian.PutUint16(out[4:], 1)
	binary.LittleEndian.PutUint32(out[8:], uint32(len(compressed)))
	out = append(out, compressed...)
	reseal(out)
	return out
}

// reseal recomputes the crc of a file in place.
func reseal(file []byte) {
	t := crc32.MakeTable(crc32.Castagnoli)
	sum := crc32.Update(crc32.Checksum(file[:12], t), t, file[16:])
	binary.LittleEndian.PutUint32(file[12:], sum)
}

// repack stores a payload in a file as an uncompressed zstd frame, which
// is quicker than compressing and still valid zstd.
func repack(tb testing.TB, payload []byte) []byte {
	tb.Helper()
	const max = 128 << 10
	f := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38} // magic, no FCS, 128 KiB window
	for {
		n := min(len(payload), max)
		h := uint32(n) << 3 // raw block
		if n == len(payload) {
			h |= 1 // last
		}
		f = append(f, byte(h), byte(h>>8), byte(h>>16))
		f, payload = append(f, payload[:n]...), payload[n:]
		if len(payload) == 0 && h&1 != 0 {
			return seal(f)
		}
	}
}

// unpack returns the decompressed payload of a file.
func unpack(tb testing.TB, file []byte) []byte {
	tb.Helper()
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		tb.Fatal(err)
	}
	defer dec.Close()
	p, err := dec.DecodeAll(file[16:], nil)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
