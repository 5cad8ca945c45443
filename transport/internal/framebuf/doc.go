// Package framebuf recycles the buffers transports encode frames into.
package framebuf
