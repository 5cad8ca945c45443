package tcp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// loopbackPair is a connected pair of loopback TCP connections.
func loopbackPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		acc <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-acc
	if b == nil {
		t.FailNow()
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestRawFDReadWrite(t *testing.T) {
	a, b := loopbackPair(t)
	ra, rb := newRawFD(a), newRawFD(b)
	if ra == nil || rb == nil {
		t.Fatal("no descriptor for a TCP connection")
	}
	buf := make([]byte, 16)
	if n, err := rb.read(buf); n != 0 || err != syscall.EAGAIN {
		t.Fatalf("read of an empty socket = %d, %v; want 0, EAGAIN", n, err)
	}
	if n, err := ra.write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := rb.read(buf)
		if err == nil && string(buf[:n]) == "hello" {
			break
		}
		if err != syscall.EAGAIN || time.Now().After(deadline) {
			t.Fatalf("read = %q, %v", buf[:n], err)
		}
	}
	a.Close()
	for {
		n, err := rb.read(buf)
		if n == 0 && err == nil {
			break // the stream's end
		}
		if err != syscall.EAGAIN || time.Now().After(deadline) {
			t.Fatalf("read after the peer closed = %d, %v; want 0, nil", n, err)
		}
	}
}

// TestRawFDShutWaitsForCalls: the descriptor is closed only after every
// bare call in flight has returned, and none starts after shut.
func TestRawFDShutWaitsForCalls(t *testing.T) {
	a, _ := loopbackPair(t)
	r := newRawFD(a)
	if !r.acquire() { // a call in flight
		t.Fatal("acquire failed on an open descriptor")
	}
	shut := make(chan struct{})
	go func() {
		r.shut()
		close(shut)
	}()
	select {
	case <-shut:
		t.Fatal("shut returned while a call was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	if r.acquire() {
		t.Fatal("a call started after shut began")
	}
	r.release()
	select {
	case <-shut:
	case <-time.After(5 * time.Second):
		t.Fatal("shut did not return after the last call")
	}
	if _, err := r.write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after shut: %v, want net.ErrClosed", err)
	}
	r.shut() // again: returns at once
}

// TestWriteOneFallsBack: a frame larger than the socket takes at once is
// written whole, the bare write's share first and the rest through the
// netpoller, in order.
func TestWriteOneFallsBack(t *testing.T) {
	a, b := loopbackPair(t)
	c := &conn{nc: a, raw: newRawFD(a)}
	big := make([]byte, 32<<20) // well over loopback's socket buffers
	for i := range big {
		big[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		d, _ := io.ReadAll(io.LimitReader(b, int64(len(big))))
		got <- d
	}()
	n, err := c.writeOne(big)
	if err != nil || n != len(big) {
		t.Fatalf("writeOne = %d, %v; want %d, nil", n, err, len(big))
	}
	if d := <-got; !bytes.Equal(d, big) {
		t.Fatalf("peer read %d bytes, not the frame written", len(d))
	}
}
