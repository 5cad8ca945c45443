package tcp

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// connCongestion connects a to b and returns the congestion control of
// the connection at a's end and at b's.
func connCongestion(t *testing.T, a, b *Transport) (atA, atB string) {
	t.Helper()
	a.SetPeerAddr(2, b.Addr().String())
	if err := a.Connect(2); err != nil {
		t.Fatal(err)
	}
	end := func(tr *Transport) string {
		deadline := time.Now().Add(5 * time.Second)
		for {
			if cs := *tr.live.Load(); len(cs) == 1 && cs[0].raw != nil {
				name, err := Congestion(cs[0].raw.fd)
				if err != nil {
					t.Fatal(err)
				}
				return name
			}
			if time.Now().After(deadline) {
				t.Fatal("no connection installed")
			}
			time.Sleep(time.Millisecond)
		}
	}
	return end(a), end(b)
}

// Busy-polling connections get BusyCongestion at both ends, dialed and
// accepted; others keep the system's default unless told, and a name the
// system does not have fails New.
func TestCongestionControl(t *testing.T) {
	system, err := DefaultCongestion()
	if err != nil {
		t.Fatal(err)
	}
	if system == BusyCongestion {
		t.Logf("the system's default is %s already: the cases that keep it cannot tell it from ours", system)
	}
	for _, tc := range []struct {
		name       string
		congestion string
		busy       bool
		want       string
	}{
		{"busy", "", true, BusyCongestion},
		{"netpoll", "", false, system},
		{"busy keeping the system's", SystemCongestion, true, system},
		{"named", "reno", false, "reno"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mod := func(c *Config) { c.BusyPoll, c.Congestion = tc.busy, tc.congestion }
			a, _ := start(t, 1, mod)
			b, _ := start(t, 2, mod)
			atA, atB := connCongestion(t, a, b)
			if atA != tc.want || atB != tc.want {
				t.Errorf("dialer's end %s, acceptor's %s; want %s", atA, atB, tc.want)
			}
		})
	}
	_, err = New(Config{Self: 1, Handler: newRecorder(), Congestion: "no-such-algorithm"})
	if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "no-such-algorithm") {
		t.Errorf("New with an unknown algorithm: %v; want an error naming it (ENOENT)", err)
	}
}
