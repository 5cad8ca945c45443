package tcp

import (
	"errors"
	"io"
	"net"
	"runtime"
	"syscall"
)

// busySpins is how many non-blocking reads a busy-polling reader tries
// before it parks in the netpoller (a few milliseconds of spinning).
const busySpins = 4096

// busyReader reads a socket with non-blocking reads in a loop, so a frame
// that arrives while it spins is seen without a netpoller wakeup.
type busyReader struct {
	rc syscall.RawConn
}

func newBusyReader(nc net.Conn) (*busyReader, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, errors.New("tcp: connection has no file descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &busyReader{rc: rc}, nil
}

func (b *busyReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	rerr := b.rc.Read(func(fd uintptr) bool {
		for range busySpins {
			n, err = syscall.Read(int(fd), p)
			if err == syscall.EAGAIN || err == syscall.EINTR {
				// Let the writer that will produce the answer run: with
				// few Ps a spinning reader would otherwise starve it.
				runtime.Gosched()
				continue
			}
			return true
		}
		return false // park until readable, then spin again
	})
	if rerr != nil {
		return 0, rerr
	}
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
