package bundle_test

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/bcship/bcship/bundle"
)

// readAndVerify reads a file and verifies it against trusted, returning the
// first error.
func readAndVerify(t *testing.T, file []byte, trusted []ed25519.PublicKey) error {
	t.Helper()
	b, err := bundle.Read(file)
	if (b == nil) == (err == nil) {
		t.Fatalf("Read returned %v and %v", b, err)
	}
	if err != nil {
		checkTyped(t, err)
		return err
	}
	return b.Verify(trusted)
}

func TestFlipEveryByte(t *testing.T) {
	file, pub := signedFile(t)
	t.Logf("%d bytes", len(file))
	for i := range file {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			flipped := append([]byte(nil), file...)
			flipped[i] ^= mask
			if err := readAndVerify(t, flipped, []ed25519.PublicKey{pub}); err == nil {
				t.Fatalf("byte %d ^ %#x: no error", i, mask)
			}
		}
	}
}

// TestFlipEveryPayloadByte flips the decompressed payload and recompresses
// it with a valid crc, so the change reaches the manifest and blob checks.
func TestFlipEveryPayloadByte(t *testing.T) {
	file, pub := signedFile(t)
	payload := unpack(t, file)
	t.Logf("%d payload bytes", len(payload))
	for i := range payload {
		for _, mask := range []byte{0x01, 0x20, 0xff} {
			flipped := append([]byte(nil), payload...)
			flipped[i] ^= mask
			if err := readAndVerify(t, repack(t, flipped), []ed25519.PublicKey{pub}); err == nil {
				t.Fatalf("payload byte %d ^ %#x: no error", i, mask)
			}
		}
	}
}

func TestTruncateEveryLength(t *testing.T) {
	file, _ := signedFile(t)
	for n := range len(file) {
		_, err := bundle.Read(file[:n])
		checkTyped(t, err)
		if !errors.Is(err, bundle.ErrTruncated) {
			t.Fatalf("%d bytes: %v, want ErrTruncated", n, err)
		}
	}
	if _, err := bundle.Read(append(file, 0)); !errors.Is(err, bundle.ErrCorrupt) {
		t.Fatalf("trailing byte: %v, want ErrCorrupt", err)
	}
}

func TestTruncatePayloadEveryLength(t *testing.T) {
	file, _ := signedFile(t)
	payload := unpack(t, file)
	for n := range len(payload) {
		_, err := bundle.Read(repack(t, payload[:n]))
		checkTyped(t, err)
		// Cutting the manifest short can also leave it undecodable.
		if !errors.Is(err, bundle.ErrTruncated) && !errors.Is(err, bundle.ErrCorrupt) {
			t.Fatalf("%d payload bytes: %v", n, err)
		}
	}
}

func TestHeaderErrors(t *testing.T) {
	good := marshal(t, testBundle(t))
	for _, tc := range []struct {
		name  string
		edit  func([]byte)
		field string
		err   error
	}{
		{"magic", func(f []byte) { f[1] = 'X' }, "header.magic", bundle.ErrCorrupt},
		{"version", func(f []byte) { f[4] = 2 }, "header.version", bundle.ErrVersion},
		{"flags", func(f []byte) { f[7] = 1 }, "header.flags", bundle.ErrCorrupt},
		{"crc", func(f []byte) { f[12]++ }, "header.crc", bundle.ErrCorrupt},
		{"payload", func(f []byte) { f[len(f)-1]++ }, "header.crc", bundle.ErrCorrupt},
		{"payload resealed", func(f []byte) { f[len(f)-1]++; reseal(f) }, "payload", bundle.ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := append([]byte(nil), good...)
			tc.edit(f)
			_, err := bundle.Read(f)
			var fe *bundle.FormatError
			if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, tc.err) {
				t.Fatalf("Read: %v, want %s: %v", err, tc.field, tc.err)
			}
		})
	}
}

func TestPayloadErrors(t *testing.T) {
	payload := unpack(t, marshal(t, testBundle(t)))
	mlen := binary.LittleEndian.Uint32(payload)
	blobs := payload[4+mlen:]
	firstBlob := 4
	firstContent := firstBlob + 32 + 8
	for _, tc := range []struct {
		name  string
		edit  func([]byte) []byte
		field string
		err   error
	}{
		{"manifest length", func(p []byte) []byte { p[3] = 0xff; return p }, "manifest", bundle.ErrTooLarge},
		{"blob count", func(p []byte) []byte { p[4+mlen] = 0xff; return p }, "blobs", bundle.ErrTooLarge},
		{"blob content", func(p []byte) []byte { p[4+int(mlen)+4+firstContent-4]++; return p }, "blobs[0]", bundle.ErrHashMismatch},
		{"trailing", func(p []byte) []byte { return append(p, 0) }, "payload", bundle.ErrCorrupt},
		{"missing blob", func(p []byte) []byte {
			// Drop the last blob and fix the count.
			binary.LittleEndian.PutUint32(p[4+mlen:], 2)
			return p[:lastBlobStart(blobs)+4+int(mlen)]
		}, "", bundle.ErrCorrupt},
		{"extra blob", func(p []byte) []byte {
			binary.LittleEndian.PutUint32(p[4+mlen:], 4)
			return append(p, extraBlob()...)
		}, "blobs[3]", bundle.ErrCorrupt},
		{"non-canonical manifest", func(p []byte) []byte {
			// Same manifest with a space: decodes fine, must still fail.
			m := append([]byte(" "), p[4:4+mlen]...)
			out := binary.LittleEndian.AppendUint32(nil, mlen+1)
			out = append(out, m...)
			return append(out, p[4+mlen:]...)
		}, "manifest", bundle.ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.edit(append([]byte(nil), payload...))
			_, err := bundle.Read(repack(t, p))
			var fe *bundle.FormatError
			if !errors.As(err, &fe) || (tc.field != "" && fe.Field != tc.field) || !errors.Is(err, tc.err) {
				t.Fatalf("Read: %v, want %s: %v", err, tc.field, tc.err)
			}
		})
	}
}

// lastBlobStart returns the offset of the last blob in a blob section.
func lastBlobStart(section []byte) int {
	n := int(binary.LittleEndian.Uint32(section))
	off := 4
	for range n - 1 {
		off += 32 + 8 + int(binary.LittleEndian.Uint64(section[off+32:]))
	}
	return off
}

// extraBlob returns a well-formed blob whose digest sorts last: its sha256
// starts with 0xff.
func extraBlob() []byte {
	for i := 0; ; i++ {
		c := binary.LittleEndian.AppendUint32(nil, uint32(i))
		d := sha256Sum(c)
		if d[0] == 0xff {
			out := append(d[:], binary.LittleEndian.AppendUint64(nil, uint64(len(c)))...)
			return append(out, c...)
		}
	}
}

// bomb returns a zstd frame of raw prefix bytes (at most 128 KiB) then n
// RLE blocks of 128 KiB zeros each: 4 bytes of input per 128 KiB of output.
func bomb(prefix []byte, n int) []byte {
	f := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38} // magic, no FCS, 128 KiB window
	block := func(typ, size uint32, last bool) {
		h := size<<3 | typ<<1
		if last {
			h |= 1
		}
		f = append(f, byte(h), byte(h>>8), byte(h>>16))
	}
	if len(prefix) > 0 {
		block(0, uint32(len(prefix)), false) // raw
		f = append(f, prefix...)
	}
	for i := range n {
		block(1, 128<<10, i == n-1) // RLE
		f = append(f, 0)
	}
	return f
}

// bombPayload returns the start of a payload whose manifest and blob header
// announce an object of size bytes of zeros, which the bomb then supplies.
// Only small sizes get the right sha256: large ones never get that far.
func bombPayload(size int) []byte {
	var d [32]byte
	if size <= 1<<20 {
		d = sha256Sum(make([]byte, size))
	}
	m := `{"format":1,"name":"bomb","entries":[],"objects":[{"triple":"x86_64-linux-gnu",` +
		`"sha256":"` + hex.EncodeToString(d[:]) + `","size":` + strconv.Itoa(size) + `}],"llvm":0,"created":0}`
	p := binary.LittleEndian.AppendUint32(nil, uint32(len(m)))
	p = append(p, m...)
	p = binary.LittleEndian.AppendUint32(p, 1)
	p = append(p, d[:]...)
	return binary.LittleEndian.AppendUint64(p, uint64(size))
}

func TestZstdBomb(t *testing.T) {
	const gib = 8192 // RLE blocks
	for _, tc := range []struct {
		name  string
		file  []byte
		limit int64
		err   error
	}{
		// Zeros from the start: an empty manifest, rejected early.
		{"zeros", seal(bomb(nil, gib)), 1 << 20, bundle.ErrCorrupt},
		// A manifest announcing 1 GiB: rejected before the blob.
		{"announced", seal(bomb(bombPayload(1<<30), gib)), 1 << 20, bundle.ErrTooLarge},
		{"announced, default limit", seal(bomb(bombPayload(1<<30), gib)), 0, bundle.ErrTooLarge},
		// A valid 512 KiB bundle followed by 1 GiB of zeros.
		{"trailing", seal(bomb(bombPayload(512<<10), gib+4)), 1 << 20, bundle.ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := bundle.ReadLimit(tc.file, tc.limit)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)

			checkTyped(t, err)
			if !errors.Is(err, tc.err) {
				t.Fatalf("ReadLimit: %v, want %v", err, tc.err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Errorf("allocated %d bytes for a %d-byte file", alloc, len(tc.file))
			}
			if elapsed > 2*time.Second {
				t.Errorf("took %v", elapsed)
			}
		})
	}
}

func TestZstdBombDeclaredSize(t *testing.T) {
	// A single-segment frame that claims 1 TiB: its window is the content
	// size, refused before anything is allocated.
	f := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0}
	f = binary.LittleEndian.AppendUint64(f, 1<<40)
	f = append(f, 0x03, 0x00, 0x00) // last raw block, empty
	_, err := bundle.ReadLimit(seal(f), 1<<20)
	checkTyped(t, err)
	if !errors.Is(err, bundle.ErrTooLarge) {
		t.Fatalf("ReadLimit: %v, want ErrTooLarge", err)
	}
}
