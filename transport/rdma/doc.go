// Package rdma is bcship's RDMA transport: wire frames over reliable
// connected (RC) queue pairs through package verbs (pure Go, no
// libibverbs or librdmacm), with one-sided READ and WRITE of the regions
// peers register.
//
// Control path. Every Transport runs a transport/tcp Transport underneath
// and announces CapRDMA in its HELLO. The RDMA connection to a peer is set
// up over that TCP connection, as AM frames for the reserved handler
// "\x00bcship.rdma" that this package consumes: CONNECT (GID, QPN, PSN,
// receive ring slots and slot size, the region table with MR addresses,
// sizes and rkeys) → ACCEPT (the same, the responder's QP already RTS) →
// READY (the initiator's QP is RTS: the responder may send). Reusing the
// TCP connection keeps one address per node, reuses HELLO for identity and
// capabilities, and reuses its heartbeats: when the control connection
// dies, the RDMA connection is torn down and the node hears PeerDown once.
// Peers without CapRDMA, or whose setup failed (retried after 5 s), are
// reached over the TCP connection. When two nodes set up at once, the
// lower node id's attempt wins and the other is rejected.
//
// Messages. Each connection has a ring of RecvSlots receive buffers of
// SlotSize bytes, all posted before the peer learns the QPN. A frame goes
// as SEND-with-immediate of up to one slot; larger frames are chunked
// (immediate flag MORE) and reassembled in order. The immediate also
// returns credits: every receive slot consumed and reposted is announced
// to the peer on its next SEND, or by a credit-only SEND once a quarter of
// the ring is owed. A sender needs a credit per SEND (one is reserved for
// credit-only SENDs, so two sides out of credits unblock each other): no
// receive is ever missing, so there are no RNR retries. Send never blocks
// on credits: frames wait in a per-peer queue bounded by MaxQueued bytes.
//
// One-sided. RegisterRegion registers memory as an MR readable and
// writable by peers; Read and Write are RDMA READ and WRITE against a
// peer's advertised regions, bounds-checked at the origin (RegionError)
// because an access outside an MR would put both QPs into the error state.
// They stage through a small registered scratch area per connection.
//
// Completions. Connections share CQs (send and receive; a new CQ when the
// entries run out, about 30 connections each), and one poller goroutine per
// CQ spins for SpinFor after its last completion, then sleeps with a
// doubling pause up to MaxSleep, and after 20 ms without completions
// blocks on the CQ's completion channel (no wake-ups while idle); the
// node's Handler runs on it. A caller waiting for its one-sided access
// polls the CQ itself meanwhile. Work
// request ids carry the connection, so the poller dispatches by them. A completion with an error (retry exceeded: the peer died or its QP
// failed) fails the connection: queued frames are dropped, pending Read
// and Write return an error matching transport.ErrPeerDown, and the node
// hears PeerDown. With the QP's timeout (≈67 ms) and 7 retries that is
// ≈0.55 s after the first unanswered packet; a peer that dies while idle
// is caught by the TCP heartbeats (800 ms).
package rdma
