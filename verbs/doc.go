// Package verbs is bcship's pure-Go RDMA verbs layer: it talks to the
// kernel's uverbs ABI through ioctl and write on /dev/infiniband/uverbs*,
// without cgo or libibverbs.
//
// Control commands go through RDMA_VERBS_IOCTL (UVERBS_METHOD_INVOKE_WRITE
// for the classic write commands, native methods for QUERY_PORT and
// QUERY_GID_ENTRY) and fall back to write() where the ioctl path is refused.
// The data path is provider specific; rxe (soft-RoCE) maps the kernel's
// SQ/RQ/CQ rings into the process, posts work requests by writing WQEs and
// advancing the producer index, and polls completions from the CQ ring.
//
// Lifetimes: a Context owns the command file; PDs, MRs, CQs and QPs are
// destroyed by their Close, which is idempotent, and everything still open
// goes when the Context is closed. Destroy in reverse order of creation (QP,
// CQ, MR, PD, Context). Errors are *Error values carrying the operation and
// errno; misuse (posting on a closed QP or in the wrong state, an SGE outside
// its MR, a full queue) is an *Error too, matching ErrClosed, ErrQPState,
// ErrOutOfBounds or ErrQueueFull with errors.Is.
package verbs
