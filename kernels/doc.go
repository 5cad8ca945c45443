// Package kernels embeds bcship's prebuilt kernels (the X-RDMA operations
// such as the pointer chase), compiled by clang for every supported
// architecture and committed, so a node or the demo needs no compiler.
// `make testdata` rebuilds them from testdata/*.c.
package kernels
