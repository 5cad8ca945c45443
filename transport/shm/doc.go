// Package shm is bcship's shared-memory transport: wire frames between
// nodes on the same host through rings in a file both map, the way UCX
// reaches co-located peers, with TCP for everything else.
//
// Control path. Every Transport runs a transport/tcp Transport underneath
// and announces CapSharedMemory in its HELLO. When a peer that announces it
// is first used, the side that needs it (the initiator) creates a segment
// file in Dir (/dev/shm: random name, mode 0600), sizes and maps it
// (MAP_SHARED) and sends OFFER (its host identity, the file's name and a
// random token written in the file) over the TCP connection, as an AM frame
// for the reserved handler "\x00bcship.shm" that this package consumes. The
// acceptor checks the host identity (the kernel's boot id), opens the file
// in its own Dir, unlinks it, checks the token (same file, not one of the
// same name in another mount namespace), maps it, has its receive loop
// poll it and answers ACCEPT; the initiator unlinks the name too (whichever
// comes first) and polls its side. Any failure — another host, another
// /dev/shm, another user, no /dev/shm — answers REJECT and the pair stays on
// TCP until its TCP link drops; never an error to the node. When both set
// up at once, the lower node id's attempt wins. Frames sent over TCP before
// the switch are delivered before any frame from the ring (see
// peerState.Order). HELLO, heartbeats and setup stay on TCP: when the
// TCP connection dies the shared-memory connection is torn down, sends
// fail with ErrPeerDown, and the node hears PeerDown once.
//
// Rings. The segment holds a ring per direction, each a single-producer,
// single-consumer byte stream of whole wire frames (the bytes a TCP
// connection would carry), with free-running head and tail counts on
// cache lines of their own. Frames larger than the free space go in pieces
// as the consumer makes room, so frames of any size keep their order and
// none needs TCP. Senders copy a frame into the ring on their own goroutine
// when nothing is queued; otherwise, and for what does not fit, frames wait
// in a per-peer queue (MaxQueued bytes, then ErrQueueFull) that the
// connection's send loop drains: Send never blocks on a slow peer, so a
// node's Handler may send freely.
//
// Waiting. One receive loop per Transport polls the rings of all its
// connections and delivers to the node's Handler (one spinning loop per
// connection made a node with n peers run n spinners taking turns on few
// cores; transport/rdma shares its CQ pollers for the same reason). It
// polls for SpinFor after the last frame (runtime.Gosched between bursts of
// polls; with TCP.BusyPoll longer, 50 µs to 2 ms as the traffic's gaps ask:
// see busyMinSpin), then announces in every ring's sleep word
// that it sleeps, checks the rings once more and sleeps on all the words at
// once (futex_waitv; before Linux 5.16, one helper goroutine per word in
// FUTEX_WAIT), shared futexes, not private: the waker is another process.
// A producer wakes it (FUTEX_WAKE) only when the word says it sleeps; both
// sides use sequentially consistent atomics, so either the loop sees the
// new frame before it sleeps or the producer sees it asleep. Sleeps enter
// the kernel with entersyscallblock, so a sleeping loop holds no P, and
// time out after 100 ms as a safety net. A connection's send loop waits for
// ring space the same way, on a second word.
//
// Trust. The peer can write anything anywhere in the segment: every value
// read from it is checked before use (the header by parseHeader, ring
// positions against our own, frames by wire.ParseHeader and wire.Decode
// on a private copy), and a segment the peer shrinks under us makes the
// access fault into ErrCorrupt instead of crashing the node (see guard).
// A corrupt ring drops the connection.
package shm
