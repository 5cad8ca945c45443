// Package wire is bcship's versioned binary framing and its message types.
// It parses and encodes; it does no I/O policy (no retries, timeouts or
// connection handling), which belongs to the transport and the node.
//
// # Frames
//
// Every message travels as a frame: a fixed 24-byte header, then the
// payload. All integers are little-endian.
//
//	offset size field       notes
//	0      4    magic       "BCSH" (Magic = 0x48534342)
//	4      1    version     Version = 1; any other is ErrVersion
//	5      1    type        message type, below; 0 is never valid
//	6      2    flags       carried unchanged for the transport
//	8      8    request id  chosen by the requester, echoed by replies
//	16     4    source      node id of the node that sent this frame
//	20     4    length      payload bytes; over the reader's limit
//	                        (DefaultMaxFrameSize = 64 MiB) is ErrTooLarge
//	24     len  payload
//
// ReadFrame checks the length against its limit before it allocates, and
// leaves the type to Decode, so that a node can still answer a request of a
// type it does not know.
//
// # Payloads
//
// Field kinds: u8/u16/u32/u64 and i64 (two's complement) are fixed-size;
// hash is 32 raw bytes (sha256 of the code); str is a u16 length then that
// many bytes, at most MaxString (4096); bytes is a u32 length then that many
// bytes, bounded only by the frame; strs is a u8 count then that many strs.
// Fields follow each other without padding, in the order listed. Decoders
// check every length against the bytes left and reject leftover bytes
// (ErrMalformed), so each message has exactly one encoding.
//
//	type            fields
//	1  HELLO        node u32, llvm u16 (LLVM major, 0 = none),
//	                caps u32 (CapLLVM 1, CapRDMA 2, CapBusyPoll 4,
//	                CapSharedMemory 8),
//	                max_frame u32 (0 = default), listen str, triples strs
//	2  SHIP         hash, bundle bytes
//	3  INVOKE       hash, origin u32, origin_request u64, ttl u8, hops u8,
//	                flags u16, deadline u32 (ms, 0 = receiver's default),
//	                entry str, arg bytes
//	4  FORWARD      as INVOKE; origin and origin_request kept
//	5  NEED_CODE    hash, triple str
//	6  RESULT       origin_request u64, status i64, hops u8, reply bytes
//	7  ERROR        code u16 (ErrorCode), origin_request u64, text str
//	8  GET          offset u64, length u32, region str
//	9  GET_REPLY    data bytes
//	10 PUT          offset u64, region str, data bytes
//	11 PUT_REPLY    status u16 (ErrorCode, 0 = ok)
//	12 AM           origin u32, origin_request u64, ttl u8, handler str,
//	                arg bytes
//
// Error codes (ErrorCode): 0 ok, 1 bad frame, 2 unknown type, 3 unknown
// code, 4 untrusted, 5 TTL exhausted, 6 fault, 7 deadline, 8 unresolved
// symbol, 9 peer down, 10 too large, 11 no triple, 12 no entry, 13 no
// region, 14 out of range, 15 no handler, 16 internal.
//
// Unknown capability bits and error codes are carried unchanged, so newer
// peers can add them without a version bump.
//
// # Errors
//
// Header errors wrap ErrBadMagic, ErrVersion, ErrTooLarge or ErrTruncated.
// Payload errors are *DecodeError, naming the message type and field and
// wrapping ErrTruncated, ErrTooLarge, ErrMalformed or ErrUnknownType.
package wire
