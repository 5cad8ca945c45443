// Package transport is the contract between bcship's node runtime and the
// networks it runs over: a Transport delivers decoded wire messages between
// nodes identified by their node ids, and reports peers that die.
//
// Implementations: transport/tcp (the default). An RDMA transport on package
// verbs is planned behind the same interface.
//
// Lifetime: a Transport owns its connections and goroutines; Close stops
// them all, and every later Send fails with ErrClosed.
package transport
