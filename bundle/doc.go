// Package bundle reads and writes bcship bundles: one file that carries a
// kernel compiled for several target triples, optionally its LLVM bitcode,
// and a manifest that names, hashes and optionally signs them.
//
// A node loads the object for its own triple (Bundle.Object); without one it
// may compile the bitcode if its llc is at least the producer's LLVM major
// version. Read checks the structure and every hash; Verify checks who
// signed it. A node should call both before running anything.
//
// # File layout
//
// All integers are little-endian. The file is a fixed 16-byte header and a
// zstd payload, nothing else:
//
//	offset size field    notes
//	0      4    magic    "\x7fBCB"
//	4      2    version  FormatVersion = 1; any other is ErrVersion
//	6      2    flags    reserved, must be 0
//	8      4    length   N, bytes of compressed payload that follow
//	12     4    crc      CRC-32C (Castagnoli) of bytes 0..11, then the payload
//	16     N    payload  zstd (RFC 8878), window at most 8 MiB
//
// A file shorter than 16+N bytes is ErrTruncated; a longer one is
// ErrCorrupt. The crc catches transport damage before any decompression,
// and it also covers the zstd framing, whose header fields (window size,
// checksum flag, …) can otherwise change without changing the content. The
// version is checked before the crc so that a later version may change
// everything after it.
//
// The payload decompresses to:
//
//	u32       M, manifest length, at most 1 MiB
//	M bytes   manifest, canonical JSON (below)
//	u32       K, blob count
//	K times   sha256 [32]byte, size u64, size bytes of content
//
// Blobs are the objects and the bitcode, addressed by the sha256 of their
// content and stored once each, sorted by sha256 with no duplicates. Every
// blob must be referenced by the manifest and every reference must have its
// blob; nothing may follow the last blob.
//
// Readers enforce a limit on the decompressed payload (DefaultMaxSize, 256
// MiB, or the limit given to ReadLimit) with ErrTooLarge: a manifest whose
// blobs add up to more is refused before they are decompressed,
// decompression itself stops at the limit, zstd windows above 8 MiB (or
// above the limit, if smaller) are refused before decoding, and buffers grow
// only as data arrives. A small file therefore cannot make a node allocate
// much more than the data it really contains, nor more than the limit.
//
// # Manifest
//
// The manifest is one JSON object with exactly these members, in this order,
// without whitespace or escapes (wrapped here):
//
//	{"format":1,"name":"saxpy","entries":["dot","saxpy"],"objects":[
//	{"triple":"aarch64-linux-gnu","sha256":"<64 hex>","size":1208},
//	{"triple":"x86_64-linux-gnu","sha256":"<64 hex>","size":1176}],
//	"bitcode":{"sha256":"<64 hex>","size":2320},"llvm":19,
//	"created":1767225600,"signature":{"key":"<64 hex>","sig":"<128 hex>"}}
//
//	format     FormatVersion; must equal the header's version
//	name       1-128 bytes of [A-Za-z0-9._+-]
//	entries    function names, sorted, unique, 1-256 bytes of
//	           [A-Za-z0-9_.$] each, at most 4096 ([] for none)
//	objects    [{"triple", "sha256", "size"}], sorted by triple, each triple
//	           at most once, at most 64; triples are 1-128 bytes of
//	           [A-Za-z0-9._-]
//	bitcode    {"sha256", "size"}; absent when there is no bitcode
//	llvm       producer's LLVM major version, 0-1000; 0 means unknown and is
//	           only allowed without bitcode
//	created    creation time, Unix seconds
//	signature  {"key", "sig"}: ed25519 public key (64 hex digits) and
//	           signature (128 hex digits); absent when unsigned
//
// sha256 values are 64 lowercase hex digits; sizes are at least 1. A bundle
// must carry at least one object or bitcode. Read re-encodes the manifest it
// decoded and rejects it unless the bytes are identical, so each manifest
// has exactly one encoding.
//
// # Identity and signatures
//
// The canonical manifest bytes are the manifest encoded as above without the
// signature member. Bundle.Hash, the bundle's identity or code hash, is the
// sha256 of those bytes, and the signature is ed25519 over those same bytes.
// Signing therefore does not change the code hash, and since the manifest
// holds the sha256 of every blob, the hash and the signature cover all of
// the code. The zstd encoding is not part of the identity: recompressing a
// bundle keeps its hash.
//
// The code hash includes the creation time; callers that want reproducible
// hashes set Bundle.Created. Wrap sets it to the Unix epoch so that wrapping
// the same object twice gives the same hash.
//
// # Keys
//
// Private keys are PKCS#8 PEM ("PRIVATE KEY") files, public keys PKIX PEM
// ("PUBLIC KEY") files, as written by OpenSSL for ed25519. A trust directory
// holds one public key per *.pub file; other files are ignored.
//
// # Errors
//
// Read returns a *FormatError naming the field and wrapping ErrCorrupt,
// ErrTruncated, ErrVersion, ErrHashMismatch, ErrTooLarge or ErrInvalid.
// Marshal returns the same for a bundle it would not be able to read back.
// Verify returns an error wrapping ErrUnsigned, ErrUntrusted or
// ErrBadSignature; key functions wrap ErrBadKey or an fs error.
package bundle
