package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/bcship/bcship/transport/tcp"
	"golang.org/x/sys/unix"
)

// rawPingPong is the floor under every busy-polling TCP round trip: size
// bytes each way on a loopback connection, both ends spinning on
// non-blocking recvfrom(2) and answering with one sendto(2), bare system
// calls as transport/tcp makes them, with no framing, no runtime poller
// and nothing else in between. What a row costs above it is software; the
// rest is the kernel's loopback path, the same for any TCP transport on
// this host with the same congestion control: congestion names the
// algorithm of both sockets, "" for the system's default.
//
// The echo side spins on a CPU of its own until the returned stop, so it
// must run alone, like the node pairs.
func rawPingPong(size int, congestion string) (f func() error, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	acc := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		acc <- accepted{c, err}
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	a := <-acc
	if a.err != nil {
		cc.Close()
		return nil, nil, a.err
	}
	sc := a.c
	cfd, err1 := rawFD(cc)
	sfd, err2 := rawFD(sc)
	if err := errors.Join(err1, err2); err != nil {
		cc.Close()
		sc.Close()
		return nil, nil, err
	}
	if congestion != "" {
		if err := errors.Join(tcp.SetCongestion(cfd, congestion), tcp.SetCongestion(sfd, congestion)); err != nil {
			cc.Close()
			sc.Close()
			return nil, nil, err
		}
	}
	// The descriptors stay open while the conns do: the echo loop is told to
	// stop and has stopped before they are closed, so it never reads a
	// descriptor number that has been reused.
	var quit atomic.Bool
	exited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		buf := make([]byte, size)
		for {
			if err := spinRead(sfd, buf, &quit); err != nil {
				exited <- err
				return
			}
			if err := writeAll(sfd, buf); err != nil {
				exited <- err
				return
			}
		}
	}()
	msg, in := make([]byte, size), make([]byte, size)
	for i := range msg {
		msg[i] = byte(i)
	}
	f = func() error {
		if err := writeAll(cfd, msg); err != nil {
			return err
		}
		if err := spinRead(cfd, in, &quit); err != nil {
			return err
		}
		if !bytes.Equal(in, msg) {
			return errors.New("echo differs from the message")
		}
		select {
		case err := <-exited:
			return fmt.Errorf("echo side: %w", err)
		default:
			return nil
		}
	}
	stop = func() {
		quit.Store(true)
		<-exited
		cc.Close()
		sc.Close()
	}
	return f, stop, nil
}

var errQuit = errors.New("stopped")

// rawFD is c's descriptor, non-blocking as the runtime keeps it.
func rawFD(c net.Conn) (int, error) {
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(d uintptr) { fd = int(d) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// spinRead fills buf from fd, polling with non-blocking reads.
func spinRead(fd int, buf []byte, quit *atomic.Bool) error {
	for got := 0; got < len(buf); {
		n, e := bareCall(unix.SYS_RECVFROM, fd, buf[got:], 0)
		switch {
		case e == 0 && n > 0:
			got += n
		case e == unix.EAGAIN || e == unix.EINTR:
			if quit.Load() {
				return errQuit
			}
		case e != 0:
			return e
		default:
			return errors.New("connection closed")
		}
	}
	return nil
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, e := bareCall(unix.SYS_SENDTO, fd, b, unix.MSG_NOSIGNAL)
		if e != 0 && e != unix.EAGAIN && e != unix.EINTR {
			return e
		}
		if n > 0 {
			b = b[n:]
		}
	}
	return nil
}

// bareCall is recvfrom or sendto without an address, made as the transport
// makes them: without telling the scheduler, since they never block.
func bareCall(trap uintptr, fd int, b []byte, flags uintptr) (int, unix.Errno) {
	n, _, e := unix.RawSyscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), flags, 0, 0)
	return int(n), e
}
