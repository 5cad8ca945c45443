package tcp

import (
	"errors"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Waking parked read loops.
//
// A busy read loop that has seen no traffic for a while parks in the
// runtime's netpoller. But no processor polls the network while every one
// of them runs a spinning goroutine (spinners yield with Gosched, so the run
// queue is never empty and the scheduler never reaches its poll; only
// sysmon polls, every 10 ms): a frame on a quiet connection next to a hot
// one waited up to 10 ms (BenchmarkQuietPeer busy/hot, p90). So spinners
// look after parked loops: the transport keeps the sockets of parked loops
// in an epoll set of its own, spinners ask it (one non-blocking epoll_wait)
// when they yield, and poke a loop whose socket has data by setting a read
// deadline in the past, which wakes its wait at once without a netpoll.
// Readers of a pokable connection take the deadline error as "look again".

// pokedAt is the read deadline of a poke: long past.
var pokedAt = time.Unix(1, 0)

// parkSet is the epoll set of the sockets whose read loops are parked.
type parkSet struct {
	fd int // epoll; -1 without BusyPoll
	n  atomic.Int32
}

func newParkSet(busy bool) (*parkSet, error) {
	p := &parkSet{fd: -1}
	if !busy {
		return p, nil
	}
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	p.fd = fd
	return p, nil
}

// add puts socket fd in the set; its read loop is about to park.
func (p *parkSet) add(fd int) bool {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	if unix.EpollCtl(p.fd, unix.EPOLL_CTL_ADD, fd, &ev) != nil {
		return false
	}
	p.n.Add(1)
	return true
}

// remove takes socket fd out of the set; its loop is back. The caller
// counts it out of n, whether or not the socket was still open.
func (p *parkSet) remove(fd int) {
	unix.EpollCtl(p.fd, unix.EPOLL_CTL_DEL, fd, nil)
}

func (p *parkSet) close() {
	if p.fd >= 0 {
		unix.Close(p.fd)
	}
}

// pokeParked wakes the parked read loops whose sockets have data; spinners
// call it when they yield.
func (t *Transport) pokeParked() {
	if t.park.n.Load() == 0 {
		return
	}
	var evs [8]unix.EpollEvent
	n, err := unix.EpollWait(t.park.fd, evs[:], 0)
	if err != nil || n <= 0 {
		return
	}
	conns := t.live.Load()
	if conns == nil {
		return
	}
	for _, ev := range evs[:n] {
		for _, c := range *conns {
			if c.raw != nil && c.raw.fd == int(ev.Fd) {
				c.nc.SetReadDeadline(pokedAt)
			}
		}
	}
}

// poked reports whether err is a poke's deadline on a pokable connection,
// and clears the deadline if so.
func (s *sockReader) poked(err error) bool {
	if !s.pokable || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	s.nc.SetReadDeadline(time.Time{})
	return true
}
