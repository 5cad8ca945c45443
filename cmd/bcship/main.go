// Command bcship ships compiled C kernels to the cluster node that holds
// the data and runs them there. Run `bcship --help` for the verbs.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := newRoot(logger).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bcship:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

func newRoot(logger *slog.Logger) *cobra.Command {
	root := &cobra.Command{
		Use:   "bcship",
		Short: "Ship compiled code to where the data lives",
		Long: `bcship compiles small C kernels ahead of time for every target triple,
ships the relocatable object to the node that holds the data, links it there
with its own ELF loader and runs it next to the data.

Start with "bcship demo".`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newDemo(logger), newInspect())
	root.AddCommand(newBuild(logger), newKeygen(), newSign(), newVerify())
	root.AddCommand(shipVerbs(root, logger)...)
	root.AddCommand(newRxe(), newRdma())
	return root
}
