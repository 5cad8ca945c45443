package shm

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bcship/bcship/transport/internal/framebuf"
	"github.com/bcship/bcship/wire"
)

// ring is one direction of a connection: a single-producer,
// single-consumer byte stream of whole wire frames, exactly as they go on
// a TCP connection, in a power-of-two data area. A frame larger than the
// free space (or the whole ring) goes in pieces as the consumer makes
// room, so frames of any size keep their order.
//
// Each side keeps its own position (pos) and only reads the other's from
// the shared words, so a peer that scribbles over them can make us see
// garbage bytes but never read or write outside the data area: every
// shared position is checked against ours before use (errCorrupt).
type ring struct {
	data  []byte
	size  uint64
	head  *atomic.Uint64
	tail  *atomic.Uint64
	sleep *atomic.Uint32
	wait  *atomic.Uint32
	pos   uint64 // our side's count: head for the producer, tail for the consumer
}

// newRing views a control block and a data area of a power-of-two size.
func newRing(ctrl, data []byte) *ring {
	return &ring{data: data, size: uint64(len(data)),
		head: word64(ctrl, offHead), tail: word64(ctrl, offTail),
		sleep: word32(ctrl, offSleep), wait: word32(ctrl, offWait)}
}

func (r *ring) corrupt(what string, v uint64) error {
	return fmt.Errorf("%w: %s %d against our position %d in a ring of %d bytes", ErrCorrupt, what, v, r.pos, r.size)
}

// Producer side.

// space returns how many bytes the producer may put.
func (r *ring) space() (uint64, error) {
	t := r.tail.Load()
	if used := r.pos - t; used > r.size {
		return 0, r.corrupt("tail", t)
	}
	return r.size - (r.pos - t), nil
}

// put copies p, which must fit in space(), at the producer's position.
// The consumer sees it after publish.
func (r *ring) put(p []byte) {
	off := r.pos & (r.size - 1)
	n := copy(r.data[off:], p)
	copy(r.data, p[n:])
	r.pos += uint64(len(p))
}

// publish makes what put wrote visible, and wakes the consumer if it
// announced that it sleeps. The head store and the sleep load are both
// sequentially consistent, like the consumer's sleep store and head load
// in snooze, so at least one side sees the other's write: either the
// consumer finds the bytes before it sleeps or we find it asleep. The
// stores are swaps: the same instruction as a store on amd64, a full
// barrier everywhere. Under qemu-user (arm64 on an amd64 host) with plain
// stores the no-lost-wakeup test lost a wake-up once in a few runs: the
// emulation seemingly lets the load pass the STLR; with swaps it has not.
func (r *ring) publish() {
	r.head.Swap(r.pos)
	if r.sleep.Load() != 0 && r.sleep.CompareAndSwap(1, 0) {
		futexWake(r.sleep)
	}
}

// waitSpace sleeps until the consumer frees some space, stop is set, or d
// passes; it returns at once when there is space already. The protocol
// mirrors snooze's, with wait for sleep and tail for head.
func (r *ring) waitSpace(stop *atomic.Bool, d time.Duration) error {
	r.wait.Swap(1)
	if s, err := r.space(); s > 0 || err != nil || stop.Load() {
		r.wait.Store(0)
		return err
	}
	futexWait(r.wait, 1, d)
	r.wait.Store(0)
	return nil
}

// Consumer side.

// avail returns how many published bytes the consumer has not taken.
func (r *ring) avail() (uint64, error) {
	h := r.head.Load()
	if n := h - r.pos; n > r.size {
		return 0, r.corrupt("head", h)
	}
	return h - r.pos, nil
}

// get copies len(p) bytes, which must be available, from the consumer's
// position.
func (r *ring) get(p []byte) {
	off := r.pos & (r.size - 1)
	n := copy(p, r.data[off:])
	copy(p[n:], r.data)
	r.pos += uint64(len(p))
}

// watch polls the head up to n times and reports whether it moved.
func (r *ring) watch(n int) bool {
	for range n {
		if r.head.Load() != r.pos {
			return true
		}
	}
	return false
}

// skip consumes n available bytes unread.
func (r *ring) skip(n uint64) { r.pos += n }

// release gives what the consumer took back to the producer, and wakes the
// producer if it waits for space.
func (r *ring) release() {
	r.tail.Swap(r.pos)
	if r.wait.Load() != 0 && r.wait.CompareAndSwap(1, 0) {
		futexWake(r.wait)
	}
}

// snooze sleeps until the producer publishes, stop is set, or d passes;
// it returns at once when bytes are waiting. Whoever stops the consumer
// sets stop, then clears sleep and wakes it (see wakeConsumer).
func (r *ring) snooze(stop *atomic.Bool, d time.Duration) error {
	r.sleep.Swap(1)
	if n, err := r.avail(); n > 0 || err != nil || stop.Load() {
		r.sleep.Store(0)
		return err
	}
	futexWait(r.sleep, 1, d)
	r.sleep.Store(0)
	return nil
}

// wakeConsumer and wakeProducer interrupt the consumer's snooze and the
// producer's waitSpace, whichever side runs them, after its stop flag (or
// the segment's closed word) was set.
func (r *ring) wakeConsumer() {
	r.sleep.Store(0)
	futexWake(r.sleep)
}

func (r *ring) wakeProducer() {
	r.wait.Store(0)
	futexWake(r.wait)
}

// growStep is the first allocation for a frame that has not arrived
// whole.
const growStep = 64 << 10

// reader reassembles frames from the consumer side of a ring. Its state
// survives between polls, since a frame may arrive in pieces.
type reader struct {
	r        *ring
	maxFrame uint32 // our limit; larger frames are skipped
	hdr      [wire.HeaderSize]byte
	cur      []byte      // the frame being filled, header included
	need     int         // its full length
	discard  uint64      // bytes of an oversize frame still to skip
	skipped  wire.Header // that frame's header
	// arena holds the frames that arrived whole in the last poll; the
	// next poll reuses it.
	arena framebuf.Arena
}

// poll takes what the ring holds: complete frames are appended to frames
// (nothing aliases the mapping; frames that arrived whole share the
// reader's arena and are valid until the next poll that takes anything),
// and the headers of oversize frames, skipped whole, to over. It releases
// what it took and reports whether it took anything. An error means the stream
// has lost its framing or the peer corrupted the ring: the connection is
// unusable.
func (rd *reader) poll(frames [][]byte, over []wire.Header) ([][]byte, []wire.Header, bool, error) {
	r := rd.r
	avail, err := r.avail()
	if err != nil || avail == 0 {
		return frames, over, false, err
	}
	rd.arena.Reset()
loop:
	for avail > 0 {
		if rd.discard > 0 {
			n := min(avail, rd.discard)
			r.skip(n)
			avail -= n
			if rd.discard -= n; rd.discard == 0 {
				over = append(over, rd.skipped)
			}
			continue
		}
		if rd.cur == nil {
			if avail < wire.HeaderSize {
				break loop // the rest of the header is on its way
			}
			r.get(rd.hdr[:])
			avail -= wire.HeaderSize
			h, err := wire.ParseHeader(rd.hdr[:])
			if err != nil {
				r.release()
				return frames, over, true, fmt.Errorf("%w: stream lost its framing: %w", ErrCorrupt, err)
			}
			if h.Length > rd.maxFrame {
				rd.discard, rd.skipped = uint64(h.Length), h
				continue
			}
			// Memory for what has arrived, not for what the header
			// claims: a peer announcing a large frame and stalling costs
			// little (as with wire.ReadFrame).
			rd.need = wire.HeaderSize + int(h.Length)
			if uint64(h.Length) <= avail { // here whole: into the arena
				f := rd.arena.Take(rd.need)
				copy(f, rd.hdr[:])
				r.get(f[wire.HeaderSize:])
				avail -= uint64(h.Length)
				frames = append(frames, f)
				rd.need = 0
				continue
			}
			rd.cur = make([]byte, wire.HeaderSize, min(rd.need, wire.HeaderSize+max(growStep, int(min(avail, MaxRingSize)))))
			copy(rd.cur, rd.hdr[:])
		}
		n := int(min(avail, uint64(rd.need-len(rd.cur))))
		k := len(rd.cur)
		if k+n > cap(rd.cur) {
			rd.cur = append(make([]byte, 0, min(rd.need, max(2*cap(rd.cur), k+n))), rd.cur...)
		}
		rd.cur = rd.cur[:k+n]
		r.get(rd.cur[k:])
		avail -= uint64(n)
		if len(rd.cur) == rd.need {
			frames = append(frames, rd.cur)
			rd.cur, rd.need = nil, 0
		}
	}
	r.release()
	return frames, over, true, nil
}
