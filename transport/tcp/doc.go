// Package tcp is bcship's default transport: one persistent TCP connection
// per pair of nodes, used in both directions and dialed lazily by whichever
// side sends first.
//
// A connection starts with a HELLO from each side (the dialer writes
// first). Frames are pipelined: Send encodes into a pooled buffer and queues
// it; one writer goroutine per connection sends everything queued with one
// writev, and one reader goroutine decodes frames and hands them to the
// Handler. TCP_NODELAY is set. With Config.BusyPoll the reader spins on
// non-blocking reads before parking, for the lowest latency.
//
// Errors on the wire are answered, not fatal: a payload that does not
// decode gets ERROR CodeBadFrame, an unknown message type CodeUnknownType,
// and a frame over the size limit CodeTooLarge (its bytes are skipped), all
// naming the request id, and the connection stays up. Only a stream that
// has lost its framing (bad magic or version) is answered and then closed.
//
// Dead peers: a read or write error, or no frame for DeadAfter (idle
// connections carry a HELLO heartbeat every Heartbeat), closes the
// connection and calls Handler.PeerDown, so a node can fail requests in
// flight within a second. Sends to a peer whose dial failed fail fast until
// a backoff (doubling up to MaxBackoff) has passed; then the next Send dials
// again.
//
// When two nodes dial each other at the same time, both keep the connection
// dialed by the lower node id and close the other after a grace period.
package tcp
