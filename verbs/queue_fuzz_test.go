package verbs

import (
	"encoding/binary"
	"runtime"
	"testing"
	"unsafe"

	"github.com/bcship/bcship/internal/uverbs"
)

// fuzzMem copies raw into 8-byte aligned memory of at least n bytes.
func fuzzMem(raw []byte, n int) ([]byte, []uint64) {
	words := make([]uint64, (max(len(raw), n)+7)/8)
	mem := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
	copy(mem, raw)
	return mem, words
}

// cqSeed is a CQ ring of 4 64-byte slots holding completions 0 and 1.
func cqSeed() []byte {
	mem := make([]byte, uverbs.RxeQueueDataOffset+4*64)
	le := binary.LittleEndian
	le.PutUint32(mem[uverbs.RxeQueueLog2ElemSizeOffset:], 6)
	le.PutUint32(mem[uverbs.RxeQueueIndexMaskOffset:], 3)
	le.PutUint32(mem[uverbs.RxeQueueProducerOffset:], 2)
	for i := range 2 {
		s := mem[uverbs.RxeQueueDataOffset+i*64:]
		le.PutUint64(s[0:], uint64(100+i))         // wr_id
		le.PutUint32(s[12:], uint32(WCRecv))       // opcode
		le.PutUint32(s[20:], 2)                    // byte_len
		binary.BigEndian.PutUint32(s[24:], 0xabcd) // imm
	}
	return mem
}

// FuzzQueue feeds arbitrary rxe queue memory (the struct rxe_queue_buf
// header the kernel shares with us, then the slots) to the queue parser, the
// CQ poller and the receive poster: a bad header must be refused, and
// nothing may read or write outside the ring.
func FuzzQueue(f *testing.F) {
	f.Add(cqSeed())
	bad := cqSeed()
	binary.LittleEndian.PutUint32(bad[uverbs.RxeQueueIndexMaskOffset:], 0xffff)
	f.Add(bad)
	small := cqSeed()
	binary.LittleEndian.PutUint32(small[uverbs.RxeQueueLog2ElemSizeOffset:], 3)
	f.Add(small)
	corrupt := cqSeed()
	binary.LittleEndian.PutUint32(corrupt[uverbs.RxeQueueProducerOffset:], 0xfffffff1)
	f.Add(corrupt)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 1<<16 {
			return
		}
		mem, words := fuzzMem(raw, uverbs.RxeQueueDataOffset)
		defer runtime.KeepAlive(words)
		q, err := uverbs.NewQueue(mem, uverbs.SizeOf[uverbs.WC]())
		if err == nil {
			if int(q.ElemSize()) < int(uverbs.SizeOf[uverbs.WC]()) || uverbs.RxeQueueDataOffset+int(q.Mask()+1)*int(q.ElemSize()) > len(mem) {
				t.Fatalf("accepted a ring that does not fit: elem %d mask %#x in %d bytes", q.ElemSize(), q.Mask(), len(mem))
			}
			cq := &rxeCQ{q: q}
			wcs := make([]WC, 3)
			for range 3 {
				want := min(len(wcs), int((q.Producer()-q.Consumer())&q.Mask()))
				n := cq.poll(wcs)
				if n != want {
					t.Fatalf("polled %d, ring held %d", n, want)
				}
				for i := range wcs[:n] {
					_ = wcs[i].Err()
					_ = wcs[i].Status.String()
				}
				if q.Consumer() > q.Mask() {
					t.Fatalf("consumer %d beyond mask %#x", q.Consumer(), q.Mask())
				}
			}
		}
		// The same memory as a receive queue: posting stays in the ring
		// (the race detector and -d=checkptr catch strays).
		mem2, words2 := fuzzMem(raw, uverbs.RxeQueueDataOffset)
		defer runtime.KeepAlive(words2)
		rq, err := uverbs.NewQueue(mem2, uverbs.SizeOf[uverbs.RxeRecvWQE]()+uverbs.SizeOf[uverbs.RxeSGE]())
		if err != nil {
			return
		}
		r := &rxeQP{rq: rq}
		sges := []SGE{{Addr: 1, Length: 2, LKey: 3}}
		for i := range 3 {
			free := free(rq)
			err := r.postRecv([]RecvWR{{ID: uint64(i), SGEs: sges}})
			if (err == nil) != (free >= 1) {
				t.Fatalf("postRecv with %d free: %v", free, err)
			}
		}
	})
}
