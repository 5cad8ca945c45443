// Package verbs is bcship's pure-Go RDMA verbs layer: it talks to the kernel's
// uverbs ABI through ioctl and write on /dev/infiniband/uverbs*, without cgo
// or libibverbs. Not implemented yet; see the project's open issues.
package verbs
