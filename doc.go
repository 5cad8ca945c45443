// Package bcship moves compute to data: it ships compiled C kernels to the
// cluster node that holds the data, links them there with its own ELF loader
// and runs them next to the data.
//
// # Nodes
//
// A Node is one member of a cluster. It serves data regions
// (RegisterRegion), runs code other nodes ship to it, and is the origin API
// for code it sends out itself:
//
//	n, err := bcship.NewNode(bcship.Config{ID: 1, Listen: ":7401", Peers: peers, Trust: keys})
//	err = n.Start(ctx)
//	res, err := n.Invoke(ctx, 3, code, "chase", arg) // run entry "chase" of code on node 3
//
// Invoke sends the bundle along with the first request to a node and only
// its hash afterwards; a node that meets an unknown hash (its cache evicted
// it, or a chain forwarded the code to it) asks the origin with NEED_CODE.
// Shipped code must be signed by a key in Config.Trust unless the node is
// Insecure. A node runs the object for its own triple, else compiles the
// bundle's bitcode when it has llc (Config.Toolchain), else the origin
// cross-compiles for it (and signs the result with Config.SigningKey).
// Loaded images are cached by code hash, least recently used out first
// once their bytes pass Config.CacheBytes.
//
// # Chains
//
// Kernels never block and never call back into Go: their helpers (bc_reply,
// bc_forward, bc_invoke, bc_put, bc_get, bc_log) append to an outbox that
// the node carries out after the kernel returns. A forward re-runs the code
// on another node with the origin kept and one less TTL (Config.DefaultTTL,
// 64 by default); replies go straight to the origin. The origin completes a
// request at the first RESULT whose header lacks FlagMore: the last run of
// the chain sends it, carrying its status even when the kernel did not
// reply. Replies sent before a forward are delivered as well, but as they
// travel on other connections they may arrive after the chain's end, and
// then they are dropped. Fan-out (several forwards from one run) is allowed,
// but the first branch to finish completes the request.
//
// # Failures
//
// Everything a remote node reports is a *RemoteError whose Code is the wire
// error code; it matches a sentinel (ErrFault, ErrDeadline,
// ErrTTLExhausted, ErrUntrusted, ErrNoTriple, ErrPeerDown, …). A faulting
// kernel or one past its deadline is contained by package exec; the node
// reports it and keeps serving. When a peer's connection dies, requests
// sent to it and every pending chain (which may have moved to any node)
// fail with ErrPeerDown, within a second of the death. Context cancellation
// abandons a request at once.
//
// # Lifetime
//
// NewNode maps the host runtime and the executor's stacks; Start brings the
// network up; Close fails pending requests with ErrClosed, stops the
// network, aborts and waits for running kernels, and unmaps every image.
// Region memory passed to RegisterRegion is used in place and must stay
// untouched by the caller while the node runs.
//
// The layers below are the sibling packages transport (and transport/tcp),
// wire, exec, loader, toolchain and bundle.
package bcship
