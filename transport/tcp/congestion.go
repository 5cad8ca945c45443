package tcp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Congestion control.
//
// A busy-polling node trades a core for latency, and on a small-frame round
// trip the congestion control algorithm is a share of the kernel's work that
// it can choose: every segment sent and every ACK received runs the
// algorithm's hooks. bbr, the default on the hosts we measured, models the
// path and paces every send (per-packet clock reads and rate updates),
// where reno only grows a window: a raw loopback ping-pong of 64 bytes took
// 13.5 µs with reno against 13.8 µs with bbr and cubic, and a cached invoke
// 0.2–0.5 µs less. For the short exchanges between nodes of a cluster the
// window never limits, so busy-polling connections use BusyCongestion
// unless Config.Congestion says otherwise; bulk transfers over lossy long
// paths, where the choice matters, are not what bcship's links carry.

// BusyCongestion is the congestion control of BusyPoll connections when
// Config.Congestion is empty. Linux always allows it to unprivileged
// processes (net.ipv4.tcp_allowed_congestion_control starts with it).
const BusyCongestion = "reno"

// SystemCongestion is the Config.Congestion value that keeps the system's
// default (net.ipv4.tcp_congestion_control).
const SystemCongestion = "system"

// CongestionFor is the algorithm a transport configured with congestion
// (Config.Congestion) and busy (Config.BusyPoll) sets on its connections,
// or "" when it leaves the system's default.
func CongestionFor(congestion string, busy bool) string {
	switch {
	case congestion == SystemCongestion:
		return ""
	case congestion == "" && busy:
		return BusyCongestion
	}
	return congestion
}

// SetCongestion sets the congestion control algorithm of TCP socket fd.
// (Under qemu-user, which passes TCP options on as 4-byte integers, only
// names of four or more letters arrive, cut to four: "reno" works there.)
func SetCongestion(fd int, name string) error {
	if err := unix.SetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION, name); err != nil {
		return fmt.Errorf("tcp: congestion control %q: %w", name, err)
	}
	return nil
}

// Congestion is the congestion control algorithm of TCP socket fd.
func Congestion(fd int) (string, error) {
	name, err := unix.GetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	if err != nil {
		return "", fmt.Errorf("tcp: congestion control: %w", err)
	}
	return name, nil
}

// DefaultCongestion is the congestion control a new TCP socket gets: the
// system's default.
func DefaultCongestion() (string, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("tcp: congestion control: %w", err)
	}
	defer unix.Close(fd)
	return Congestion(fd)
}

// checkCongestion reports whether this process may set congestion control
// name, on a socket of its own that never connects. A system without
// IPv4 cannot tell here, and its connections will say.
func checkCongestion(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	return SetCongestion(fd, name)
}
