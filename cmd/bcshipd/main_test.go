package main

import (
	"os"
	"testing"
)

// daemonEnv, when set in a test binary's environment, makes it bcshipd
// (main with os.Args[1:]) instead of a test run: TestRdmaBcshipd starts
// bcshipd as a child process this way, since in the soft-RoCE VM the test
// binary is the only program there is.
const daemonEnv = "BCSHIPD_TEST_DAEMON"

func TestMain(m *testing.M) {
	if os.Getenv(daemonEnv) != "" {
		main() // exits itself on errors
		os.Exit(0)
	}
	os.Exit(m.Run())
}
