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
	mapped   bool // mem is an mmap of the uverbs file (else NewQueue's caller owns it)
}

// MapQueue maps the queue the kernel described with mi, whose slots hold at
// least minElem bytes (the struct read from or written to each). Each mmap
// cookie can be mapped once.
func (f *FD) MapQueue(mi MMInfo, minElem uintptr) (*Queue, error) {
	if mi.Size < RxeQueueDataOffset || mi.Size > 1<<31 {
		return nil, fmt.Errorf("rxe queue of %d bytes: %w", mi.Size, unix.EINVAL)
	}
	mem, err := unix.Mmap(f.fd, int64(mi.Offset), int(mi.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	q, err := NewQueue(mem, minElem)
	if err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	q.mapped = true
	return q, nil
}

// NewQueue interprets mem as an rxe queue: it checks that the header's
// log2_elem_size and index_mask describe a ring that fits mem, with slots of
// at least minElem bytes. The kernel
// wrote them, but they are read once and every slot access is masked, so
// a bad header is an error, never an access outside mem. mem must be 8-byte
// aligned and stay valid (and unmoved) while the queue is used; MapQueue
// passes the mapping.
func NewQueue(mem []byte, minElem uintptr) (*Queue, error) {
	if len(mem) < RxeQueueDataOffset || uintptr(unsafe.Pointer(unsafe.SliceData(mem)))%8 != 0 {
		return nil, fmt.Errorf("rxe queue of %d bytes: %w", len(mem), unix.EINVAL)
	}
	q := &Queue{mem: mem, base: unsafe.Pointer(&mem[0])}
	q.log2 = atomic.LoadUint32((*uint32)(unsafe.Add(q.base, RxeQueueLog2ElemSizeOffset)))
	q.mask = atomic.LoadUint32((*uint32)(unsafe.Add(q.base, RxeQueueIndexMaskOffset)))
	n := uint64(q.mask) + 1
	if q.log2 > 16 || uintptr(1)<<q.log2 < minElem || n&(n-1) != 0 || RxeQueueDataOffset+n<<q.log2 > uint64(len(mem)) {
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
	var err error
	if q.mapped {
		err = unix.Munmap(q.mem)
	}
	q.mem, q.base, q.data = nil, nil, nil
	return err
}

// Mask is index_mask: the ring has Mask()+1 slots, of which Mask() are
// usable (a full ring keeps one slot empty).
func (q *Queue) Mask() uint32 { return q.mask }

// ElemSize is the slot size in bytes.
func (q *Queue) ElemSize() uint32 { return q.elemSize }

func (q *Queue) index(off uintptr) *uint32 { return (*uint32)(unsafe.Add(q.base, off)) }

// Producer loads producer_index (acquire). Indices are stored masked; the
// mask is applied again so that a corrupt index can never make a ring look
// longer than it is.
func (q *Queue) Producer() uint32 { return atomic.LoadUint32(q.index(RxeQueueProducerOffset)) & q.mask }

// Consumer loads consumer_index (acquire), masked like Producer.
func (q *Queue) Consumer() uint32 { return atomic.LoadUint32(q.index(RxeQueueConsumerOffset)) & q.mask }

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
