// Package transport is the contract between bcship's node runtime and the
// networks it runs over: a Transport delivers decoded wire messages between
// nodes identified by their node ids, and reports peers that die.
//
// Implementations: transport/tcp (the default) and transport/rdma (RC QPs on
// package verbs, set up over a TCP connection, with one-sided READ/WRITE of
// registered regions through the optional OneSided interface) and
// transport/shm (rings in shared memory between nodes on one host, set up
// over a TCP connection). The two share their mechanics (setup state per
// peer, setup messages over TCP, frame delivery) through
// transport/internal/overlay.
//
// Lifetime: a Transport owns its connections and goroutines; Close stops
// them all, and every later Send fails with ErrClosed.
package transport
