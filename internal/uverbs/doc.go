// Package uverbs is the kernel's RDMA uverbs ABI for Go: the UAPI structs and
// constants of rdma/ib_user_verbs.h, rdma/ib_user_ioctl_{cmds,verbs}.h,
// rdma/rdma_user_ioctl_cmds.h and rdma/rdma_user_rxe.h with fixed widths and
// explicit padding, the RDMA_VERBS_IOCTL and write() command plumbing, and
// access to the rxe queues the kernel maps into the process.
//
// Layouts and constants are hand-transcribed; abi_test.go compiles the same
// names against the installed headers with the C compiler and compares every
// size, offset and value. All unsafe code of the verbs layer lives here
// (files ending in _unsafe.go). Every buffer whose address travels to the
// kernel inside a command (ioctl attributes, requests, responses) is a pooled
// heap object, never the caller's variable: the runtime cannot see such
// addresses and may move a goroutine's stack.
package uverbs
