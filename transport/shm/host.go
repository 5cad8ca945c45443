package shm

import (
	"os"
	"strings"
)

// hostID names the running kernel. Peers with the same id share a host
// and may share memory, if they also see the same Dir (the segment's
// token proves that). The boot id is random per boot, so equal ids are
// never a coincidence; the hostname is the fallback where /proc is not
// mounted. It is not combined with the boot id: containers on one host
// have different hostnames and may share /dev/shm all the same.
func hostID() string {
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return "boot:" + id
		}
	}
	h, _ := os.Hostname()
	return "host:" + h
}
