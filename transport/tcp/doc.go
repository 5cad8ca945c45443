// Package tcp is bcship's default transport: one persistent TCP connection
// per pair of nodes, used in both directions and dialed lazily by whichever
// side sends first.
//
// A connection starts with a HELLO from each side (the dialer writes
// first). Frames are pipelined: Send encodes into the connection's own
// buffer and writes it at once when nothing is queued or being written,
// else into a pooled buffer queued for the connection's writer goroutine,
// which sends everything queued with one writev; one reader goroutine
// decodes frames in place and hands them to the Handler (the message is the
// transport's again once the Handler returns). TCP_NODELAY is set.
//
// With Config.BusyPoll, for the lowest latency, readers spin on
// non-blocking reads before parking, and a caller waiting for an answer may
// read the sockets itself (Transport.Drive, see transport.Driver): the
// answer is then delivered on the caller's goroutine, without the two
// wake-ups (netpoller to reader, reader to caller) that otherwise cost
// more than the kernel's loopback round trip.
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
