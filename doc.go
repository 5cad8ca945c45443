// Package bcship moves compute to data: it ships compiled C kernels to the
// cluster node that holds the data, links them there with its own ELF loader
// and runs them next to the data.
//
// The node runtime (type Node) lives here once it exists; the layers below it
// are the sibling packages loader, exec, toolchain, wire and verbs.
package bcship
