package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// netnsNet is the network of bench --netns: a namespace per data node,
// each joined by a veth to a bridge in a hub namespace, and one veth from
// the hub to this (the origin's) namespace. Every address is in a /24 that
// exists only on these veths; deleting the namespaces removes it all.
type netnsNet struct {
	ip     string // the ip tool
	tag    string // unique per benchmark: names and subnet
	subnet string // "10.78.X"
	hub    string
	nodes  []string // namespace of data node i
	rootIf string
}

// newNetns builds the network for n data nodes. It needs root and the ip
// tool (iproute2).
func newNetns(n int) (_ *netnsNet, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("bench: --netns needs root")
	}
	ipTool, err := exec.LookPath("ip")
	if err != nil {
		return nil, fmt.Errorf("bench: --netns needs the ip tool (apt-get install iproute2): %w", err)
	}
	pid := os.Getpid()
	t := &netnsNet{ip: ipTool, tag: fmt.Sprintf("%05d", pid%100000), subnet: fmt.Sprintf("10.78.%d", pid%250+1)}
	t.hub = "bcx" + t.tag + "h"
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	if err := t.run("netns", "add", t.hub); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"-n", t.hub, "link", "add", "br0", "type", "bridge"},
		{"-n", t.hub, "link", "set", "br0", "up"},
		{"-n", t.hub, "link", "set", "lo", "up"},
	}
	for i := range n {
		ns := fmt.Sprintf("bcx%sn%d", t.tag, i)
		t.nodes = append(t.nodes, ns)
		a, b := fmt.Sprintf("bx%sa%d", t.tag, i), fmt.Sprintf("bx%sb%d", t.tag, i)
		steps = append(steps, []string{"netns", "add", ns},
			[]string{"link", "add", a, "type", "veth", "peer", "name", b},
			[]string{"link", "set", a, "netns", ns},
			[]string{"link", "set", b, "netns", t.hub},
			[]string{"-n", t.hub, "link", "set", b, "master", "br0", "up"},
			[]string{"-n", ns, "addr", "add", t.addr(i) + "/24", "dev", a},
			[]string{"-n", ns, "link", "set", a, "up"},
			[]string{"-n", ns, "link", "set", "lo", "up"})
	}
	t.rootIf = "bx" + t.tag + "r"
	hubIf := "bx" + t.tag + "h"
	steps = append(steps,
		[]string{"link", "add", t.rootIf, "type", "veth", "peer", "name", hubIf},
		[]string{"link", "set", hubIf, "netns", t.hub},
		[]string{"-n", t.hub, "link", "set", hubIf, "master", "br0", "up"},
		[]string{"addr", "add", t.originAddr() + "/24", "dev", t.rootIf},
		[]string{"link", "set", t.rootIf, "up"})
	for _, s := range steps {
		if err := t.run(s...); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// addr is data node i's address; originAddr the origin's.
func (t *netnsNet) addr(i int) string      { return fmt.Sprintf("%s.%d", t.subnet, i+1) }
func (t *netnsNet) originAddr() string     { return t.subnet + ".254" }
func (t *netnsNet) command(i int) []string { return []string{t.ip, "netns", "exec", t.nodes[i]} }

func (t *netnsNet) run(args ...string) error {
	out, err := exec.Command(t.ip, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("bench --netns: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// close deletes the namespaces, and with them every veth and address.
func (t *netnsNet) close() error {
	var errs []error
	for _, ns := range append(t.nodes, t.hub) {
		if err := t.run("netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	// The root end goes with its peer in the hub; this is for a failed
	// setup that never moved the peer.
	if t.rootIf != "" {
		exec.Command(t.ip, "link", "del", t.rootIf).Run()
	}
	return errors.Join(errs...)
}
