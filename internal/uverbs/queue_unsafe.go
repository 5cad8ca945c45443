package uverbs

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Queue is an rxe queue (SQ, RQ or CQ) mapped from the kernel: a struct
// rxe_queue_buf header followed by 1<<log2 byte slots. Indices are stored
// masked. Whoever owns an index (the process for SQ/RQ producers and the CQ
// consumer) publishes it with a release store; the other one is read with an
// acquire load. Go's sync/atomic is sequentially consistent, which covers
// both on amd64 (plain MOV + XCHG) and arm64 (LDAR/STLR).
type Queue struct {
	mem      []byte
	base     unsafe.Pointer
	data     unsafe.Pointer
	mask     uint32
	elemSize uint32
	log2     uint32
}

// MapQueue maps the queue the kernel described with mi. Each mmap cookie can
// be mapped once.
func (f *FD) MapQueue(mi MMInfo) (*Queue, error) {
	if mi.Size < RxeQueueDataOffset {
		return nil, fmt.Errorf("rxe queue of %d bytes: %w", mi.Size, unix.EINVAL)
	}
	mem, err := unix.Mmap(f.fd, int64(mi.Offset), int(mi.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	q := &Queue{mem: mem, base: unsafe.Pointer(&mem[0])}
	q.log2 = atomic.LoadUint32((*uint32)(unsafe.Add(q.base, RxeQueueLog2ElemSizeOffset)))
	q.mask = atomic.LoadUint32((*uint32)(unsafe.Add(q.base, RxeQueueIndexMaskOffset)))
	n := uint64(q.mask) + 1
	if q.log2 > 16 || n&(n-1) != 0 || RxeQueueDataOffset+n<<q.log2 > uint64(len(mem)) {
		unix.Munmap(mem)
		return nil, fmt.Errorf("rxe queue header log2_elem_size %d index_mask %#x does not fit %d bytes: %w", q.log2, q.mask, len(mem), unix.EPROTO)
	}
	q.elemSize = 1 << q.log2
	q.data = unsafe.Add(q.base, RxeQueueDataOffset)
	return q, nil
}

// Unmap releases the mapping; the queue must not be used afterwards.
func (q *Queue) Unmap() error {
	if q.mem == nil {
		return nil
	}
	err := unix.Munmap(q.mem)
	q.mem, q.base, q.data = nil, nil, nil
	return err
}

// Mask is index_mask: the ring has Mask()+1 slots, of which Mask() are
// usable (a full ring keeps one slot empty).
func (q *Queue) Mask() uint32 { return q.mask }

// ElemSize is the slot size in bytes.
func (q *Queue) ElemSize() uint32 { return q.elemSize }

func (q *Queue) index(off uintptr) *uint32 { return (*uint32)(unsafe.Add(q.base, off)) }

// Producer loads producer_index (acquire).
func (q *Queue) Producer() uint32 { return atomic.LoadUint32(q.index(RxeQueueProducerOffset)) }

// Consumer loads consumer_index (acquire).
func (q *Queue) Consumer() uint32 { return atomic.LoadUint32(q.index(RxeQueueConsumerOffset)) }

// SetProducer publishes producer_index (release): every slot written
// before it is visible to the kernel first.
func (q *Queue) SetProducer(v uint32) { atomic.StoreUint32(q.index(RxeQueueProducerOffset), v&q.mask) }

// SetConsumer publishes consumer_index (release), handing consumed slots
// back to the kernel.
func (q *Queue) SetConsumer(v uint32) { atomic.StoreUint32(q.index(RxeQueueConsumerOffset), v&q.mask) }

func (q *Queue) slot(i uint32) unsafe.Pointer {
	return unsafe.Add(q.data, uintptr(i&q.mask)<<q.log2)
}

// Slot is slot i (masked) as bytes.
func (q *Queue) Slot(i uint32) []byte { return unsafe.Slice((*byte)(q.slot(i)), q.elemSize) }

// SendWQE is slot i of a send queue.
func (q *Queue) SendWQE(i uint32) *RxeSendWQE { return (*RxeSendWQE)(q.slot(i)) }

// RecvWQE is slot i of a receive queue.
func (q *Queue) RecvWQE(i uint32) *RxeRecvWQE { return (*RxeRecvWQE)(q.slot(i)) }

// WC is slot i of a completion queue.
func (q *Queue) WC(i uint32) *WC { return (*WC)(q.slot(i)) }

// SendSGEs is the SGE area of send slot i, n entries long, or nil if n do
// not fit the slot.
func (q *Queue) SendSGEs(i uint32, n int) []RxeSGE {
	return q.sges(i, unsafe.Sizeof(RxeSendWQE{}), n)
}

// RecvSGEs is the SGE area of receive slot i, n entries long, or nil if n do
// not fit the slot.
func (q *Queue) RecvSGEs(i uint32, n int) []RxeSGE {
	return q.sges(i, unsafe.Sizeof(RxeRecvWQE{}), n)
}

func (q *Queue) sges(i uint32, hdr uintptr, n int) []RxeSGE {
	if n < 0 || hdr+uintptr(n)*unsafe.Sizeof(RxeSGE{}) > uintptr(q.elemSize) {
		return nil
	}
	return unsafe.Slice((*RxeSGE)(unsafe.Add(q.slot(i), hdr)), n)
}

// SendInline is the inline data area of send slot i.
func (q *Queue) SendInline(i uint32) []byte {
	hdr := unsafe.Sizeof(RxeSendWQE{})
	if uintptr(q.elemSize) <= hdr {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Add(q.slot(i), hdr)), uintptr(q.elemSize)-hdr)
}
