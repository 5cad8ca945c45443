// Package framebuf recycles the buffers transports encode frames into
// (Pool) and the memory receivers copy frames into (Arena).
package framebuf
