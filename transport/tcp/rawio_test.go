package tcp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/bcship/bcship/wire"
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
	if n, err := rb.read(buf); n != 0 || err != errNoData {
		t.Fatalf("read of an empty socket = %d, %v; want 0, errNoData", n, err)
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
		if err != errNoData || time.Now().After(deadline) {
			t.Fatalf("read = %q, %v", buf[:n], err)
		}
	}
	a.Close()
	for {
		n, err := rb.read(buf)
		if n == 0 && err == nil {
			break // the stream's end
		}
		if err != errNoData || time.Now().After(deadline) {
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
	if _, err := r.read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after shut: %v, want net.ErrClosed", err)
	}
	r.shut() // again: returns at once
}

// TestWriteOneFallsBack: a frame larger than the socket takes at once is
// written whole, the bare write's share first and the rest through the
// netpoller, in order.
func TestWriteOneFallsBack(t *testing.T) {
	a, b := loopbackPair(t)
	c := &conn{t: &Transport{}, nc: a, raw: newRawFD(a)}
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

// TestFramesInAnyChunks: frames arrive whole, split anywhere, or several in
// one segment, and every one is delivered once, in order, with its own
// payload, whether the read loop polls or waits (the in-place parse of a
// frame the buffer holds whole, and ReadFrame for the rest).
func TestFramesInAnyChunks(t *testing.T) {
	for _, busy := range []bool{false, true} {
		t.Run(map[bool]string{false: "netpoll", true: "busy"}[busy], func(t *testing.T) {
			a, rec := start(t, 1, func(c *Config) { c.BusyPoll = busy })
			raw, hello := rawPeer(t, a, 9)
			const frames = 40
			var each [][]byte
			for i := range frames {
				// Sizes from empty to larger than a TCP segment.
				data := bytes.Repeat([]byte{byte(i)}, (i*i*37)%3000)
				put, err := wire.AppendFrame(nil, wire.Header{RequestID: uint64(i), Source: 9}, &wire.PutReply{Status: wire.CodeOK})
				if err != nil {
					t.Fatal(err)
				}
				get, err := wire.AppendFrame(nil, wire.Header{RequestID: uint64(i), Source: 9}, &wire.GetReply{Data: data})
				if err != nil {
					t.Fatal(err)
				}
				each = append(each, put, get)
			}
			go func() {
				// The HELLO and the first ten frames in chunks of 1, 2, 3, …
				// bytes, split anywhere.
				rest := append(hello, bytes.Join(each[:10], nil)...)
				for n := 1; len(rest) > 0; n++ {
					k := min(n, len(rest))
					if _, err := raw.Write(rest[:k]); err != nil {
						return
					}
					rest = rest[k:]
					time.Sleep(100 * time.Microsecond)
				}
				// Then whole frames, one to three a write.
				for i := 10; i < len(each); i += 1 + i%3 {
					if _, err := raw.Write(bytes.Join(each[i:min(i+1+i%3, len(each))], nil)); err != nil {
						return
					}
					time.Sleep(100 * time.Microsecond)
				}
			}()
			// All delivered first, checked after: a payload that still
			// aliased the read buffer would have been overwritten by then.
			var got []wire.Message
			for range 2 * frames {
				got = append(got, wait(t, rec.got, "frame"))
			}
			for i := range frames {
				if m, ok := got[2*i].(*wire.PutReply); !ok || m.Status != wire.CodeOK {
					t.Fatalf("frame %d: got %#v, want a PUT_REPLY", 2*i, got[2*i])
				}
				m, ok := got[2*i+1].(*wire.GetReply)
				if want := bytes.Repeat([]byte{byte(i)}, (i*i*37)%3000); !ok || !bytes.Equal(m.Data, want) {
					t.Fatalf("frame %d: got %#v, want %d bytes of %d", 2*i+1, got[2*i+1], len(want), i)
				}
			}
		})
	}
}
