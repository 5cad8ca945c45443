// Package verbs is bcship's pure-Go RDMA verbs layer: it talks to the
// kernel's uverbs ABI through ioctl and write on /dev/infiniband/uverbs*,
// without cgo or libibverbs.
//
// Control commands go through RDMA_VERBS_IOCTL: native methods for CQ and
// QP creation, QUERY_PORT and QUERY_GID_ENTRY, UVERBS_METHOD_INVOKE_WRITE
// carrying the classic write-command structs for the rest. Like rdma-core they
// fall back to the write command where a native method is missing and to
// write() where the ioctl path is refused (Options selects the paths for
// comparisons). The data path is provider specific; rxe (soft-RoCE) maps the
// kernel's SQ/RQ/CQ rings into the process, posts work requests by writing
// WQEs and advancing the producer index, rings a prebuilt POST_SEND doorbell
// with write() as rdma-core's rxe provider does, and polls completions from
// the CQ ring without system calls.
//
// Latency on soft-RoCE matches perftest's in the same VM boot (the
// BenchmarkLatency comparison; see `make rxe-bench`).
//
// Completions can also be waited for: a CQ created with CreateCQWithChannel
// is armed with CQ.ReqNotify, and CompChannel.Wait blocks until an armed CQ
// gets a completion, its context is done, or CompChannel.Interrupt wakes it.
// The channel's descriptor is in the runtime's netpoller, so a waiting
// goroutine holds no OS thread. Events need no acknowledgement. Waking costs
// more than spinning (BenchmarkWake); a poller spins first and blocks once
// the CQ stays empty (see CompChannel).
//
// Lifetimes: a Context owns the command file; PDs, MRs, CQs, QPs and
// completion channels are destroyed by their Close, which is idempotent, and
// everything still open goes when the Context is closed. Destroy in reverse
// order of creation (QP, CQ, MR, PD, CompChannel, Context). Errors are *Error values carrying the operation and
// errno; misuse (posting on a closed QP or in the wrong state, an SGE outside
// its MR, a full queue, closing a channel that CQs still use) is an *Error
// too, matching ErrClosed, ErrQPState, ErrOutOfBounds, ErrQueueFull or
// ErrInUse with errors.Is.
package verbs
