// Package overlay holds what transport/rdma and transport/shm share: both
// lay a faster data path over a transport/tcp Transport, which keeps
// carrying HELLO, heartbeats, liveness and the per-peer setup messages
// (AM frames to a reserved handler name, taken off the stream by a Tap).
//
// It has the mechanics, not the protocols: the per-peer setup state
// (Peers), the Tap, frame delivery with ERROR answers (Deliver) and the
// fast path's traffic counters (Counters). Each transport keeps its own
// setup messages, its connection and its dial/accept logic, since those
// differ in ways that matter (see the transports' connFor).
package overlay
