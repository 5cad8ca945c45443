package main

import (
	"strings"
	"testing"
)

// TestDemo runs README's first command in process.
func TestDemo(t *testing.T) {
	out := mustRun(t, "demo")
	t.Logf("demo:\n%s", out)
	for _, want := range []string{"matches the walk computed in Go", "cache hit on every node", "0 SHIP (0 bytes of code)", "\nok\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}

func TestRootVerbErrors(t *testing.T) {
	if _, err := bcship(t, "sever"); err == nil || !strings.Contains(err.Error(), "did you mean serve") {
		t.Errorf("typo of a command: %v", err)
	}
	if _, err := bcship(t, "nosuch.o", "--to", "node1"); err == nil {
		t.Errorf("shipping a missing file succeeded")
	}
}
