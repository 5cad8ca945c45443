package shm

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The shared segment is one file, created by the initiator and mapped
// MAP_SHARED by both nodes:
//
//	offset          field                               written by
//	0               magic u64, version u32,             the initiator, before
//	                ring size u32, token [16]byte       its OFFER
//	256             closed u32: 1 shutting down (the TCP   either side, when it
//	                link goes too), 2 abandoned (it       gives the connection up
//	                stays)
//	1024            control block of ring 0 (initiator → acceptor)
//	2048            control block of ring 1 (acceptor → initiator)
//	4096            ring 0 data, ring size bytes
//	4096+ring size  ring 1 data
//
// A control block holds four words, each on its own 256-byte line (the
// largest cache line in use, A64FX's), so the two sides never write to
// the same line on the fast path:
//
//	+0    head u64   bytes the producer has published        producer
//	+256  tail u64   bytes the consumer has consumed         consumer
//	+512  sleep u32  futex: 1 while the consumer sleeps      consumer sets, producer clears
//	+768  wait u32   futex: 1 while the producer waits for   producer sets, consumer clears
//	                 space
//
// Head and tail are free-running byte counts (the position in the data
// area is the count modulo the ring size). Everything in the segment is
// written by the peer too, so every value read from it is checked: see
// parseHeader and ring.
const (
	segMagic   = 0x474e5253_4d485342 // "BSHMSRNG" little-endian
	segVersion = 1

	offMagic    = 0
	offVersion  = 8
	offRingSize = 12
	offToken    = 16
	offClosed   = 256
	ctrlBase    = 1024
	ctrlSize    = 1024
	offHead     = 0
	offTail     = 256
	offSleep    = 512
	offWait     = 768
	dataBase    = 4096

	// MinRingSize and MaxRingSize bound Config.RingSize (a power of two).
	MinRingSize = 4 << 10
	MaxRingSize = 1 << 30

	tokenLen   = 16
	namePrefix = "bcship-"
)

// segment is one mapped segment file.
type segment struct {
	mem      []byte
	ringSize int
	path     string // the file's name until it is unlinked
}

// layout is what parseHeader accepts from a segment's first page.
type layout struct {
	ringSize int
	token    [tokenLen]byte
}

func segmentSize(ringSize int) int64 { return dataBase + 2*int64(ringSize) }

// parseHeader validates the header of a segment of size bytes that the
// peer wrote. Everything later code relies on is checked here: the ring
// size is a power of two within bounds and the file holds both rings.
func parseHeader(hdr []byte, size int64) (layout, error) {
	if len(hdr) < dataBase || size < dataBase {
		return layout{}, fmt.Errorf("%w: segment of %d bytes", ErrBadSegment, size)
	}
	if m := binary.LittleEndian.Uint64(hdr[offMagic:]); m != segMagic {
		return layout{}, fmt.Errorf("%w: magic %#x", ErrBadSegment, m)
	}
	if v := binary.LittleEndian.Uint32(hdr[offVersion:]); v != segVersion {
		return layout{}, fmt.Errorf("%w: version %d, want %d", ErrBadSegment, v, segVersion)
	}
	rs := binary.LittleEndian.Uint32(hdr[offRingSize:])
	if rs < MinRingSize || rs > MaxRingSize || rs&(rs-1) != 0 {
		return layout{}, fmt.Errorf("%w: ring size %d", ErrBadSegment, rs)
	}
	if want := segmentSize(int(rs)); size != want {
		return layout{}, fmt.Errorf("%w: %d bytes for rings of %d (want %d)", ErrBadSegment, size, rs, want)
	}
	l := layout{ringSize: int(rs)}
	copy(l.token[:], hdr[offToken:])
	return l, nil
}

// validName reports whether name is one createSegment makes: a plain file
// name, so a peer cannot point us at another path.
func validName(name string) bool {
	hexPart, ok := strings.CutPrefix(name, namePrefix)
	if !ok || len(hexPart) != 32 {
		return false
	}
	_, err := hex.DecodeString(hexPart)
	return err == nil
}

// createSegment creates and maps a new segment file in dir (mode 0600:
// only nodes running as this user can open it) and writes its header.
func createSegment(dir string, ringSize int) (*segment, [tokenLen]byte, error) {
	var token [tokenLen]byte
	var rnd [16]byte
	rand.Read(rnd[:])
	rand.Read(token[:])
	path := filepath.Join(dir, namePrefix+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, token, err
	}
	defer f.Close() // the mapping outlives the descriptor
	size := segmentSize(ringSize)
	if err := f.Truncate(size); err != nil {
		os.Remove(path)
		return nil, token, err
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		os.Remove(path)
		return nil, token, fmt.Errorf("mmap %s: %w", path, err)
	}
	binary.LittleEndian.PutUint64(mem[offMagic:], segMagic)
	binary.LittleEndian.PutUint32(mem[offVersion:], segVersion)
	binary.LittleEndian.PutUint32(mem[offRingSize:], uint32(ringSize))
	copy(mem[offToken:], token[:])
	return &segment{mem: mem, ringSize: ringSize, path: path}, token, nil
}

// openSegment maps the segment a peer created in dir as name, unlinks it
// (the mapping is all either side needs from now on) and checks that it
// is the one the peer meant: its header is sound and carries token.
func openSegment(dir, name string, token [tokenLen]byte) (*segment, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%w: name %q", ErrBadSegment, name)
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	os.Remove(path)
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() < dataBase || fi.Size() > segmentSize(MaxRingSize) {
		return nil, fmt.Errorf("%w: %s is not a segment (%v, %d bytes)", ErrBadSegment, path, fi.Mode(), fi.Size())
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	s := &segment{mem: mem}
	l, err := parseHeader(mem[:dataBase], fi.Size())
	if err == nil && l.token != token {
		err = fmt.Errorf("%w: token mismatch (another file by that name)", ErrBadSegment)
	}
	if err != nil {
		s.unmap()
		return nil, err
	}
	s.ringSize = l.ringSize
	return s, nil
}

// unlink removes the file's name, once.
func (s *segment) unlink() {
	if s.path != "" {
		// The acceptor may have removed it already; a failure leaves a
		// name in dir, never memory in use.
		os.Remove(s.path)
		s.path = ""
	}
}

func (s *segment) unmap() {
	s.unlink()
	if s.mem != nil {
		unix.Munmap(s.mem)
		s.mem = nil
	}
}

// Values of the closed word.
const (
	closedShutdown = 1 // the node closes or lost the TCP link: PeerDown comes from TCP
	closedAbandon  = 2 // the TCP link stays: the other side must tell its node
)

// closed is the word either side sets when it gives the connection up.
func (s *segment) closed() *atomic.Uint32 { return word32(s.mem, offClosed) }

// ring returns ring i's view; the initiator produces into ring 0.
func (s *segment) ring(i int) *ring {
	return newRing(s.mem[ctrlBase+i*ctrlSize:ctrlBase+(i+1)*ctrlSize],
		s.mem[dataBase+i*s.ringSize:dataBase+(i+1)*s.ringSize])
}
