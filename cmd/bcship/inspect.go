package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"

	"github.com/bcship/bcship/internal/hostrt"
	"github.com/bcship/bcship/loader"
	"github.com/bcship/bcship/toolchain"
	"github.com/spf13/cobra"
)

func newInspect() *cobra.Command {
	var noCompile bool
	cmd := &cobra.Command{
		Use:   "inspect FILE.bcb|FILE.o",
		Short: "Describe a bundle or kernel object and check that it would load",
		Long: `inspect describes a bundle (.bcb) or a raw relocatable object (.o); it tells
them apart by their magic number, not their name.

For an object it prints the machine, entry points (functions marked
BC_ENTRY), section sizes, undefined symbols and relocation counts, and links
it against the host runtime's symbols with this build's loader to tell
whether it would load on a node.

For a bundle it prints the manifest (format version, name, code hash,
entries, producer LLVM version, creation time, signer), each object's
triple, size and sha256 and the bitcode's size, then describes every object
as above. Unless --no-compile, it also compiles the bitcode for this
machine with the local llc, as a node without a matching object would, and
checks that result too. The signature is shown, not checked: use verify.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			if bytes.HasPrefix(data, []byte(toolchain.BundleMagic)) {
				logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
				return inspectBundle(cmd.Context(), cmd.OutOrStdout(), logger, args[0], data, !noCompile)
			}
			if err := inspectObject(cmd.OutOrStdout(), args[0], data); err != nil {
				return err
			}
			// How the CLI would ship it: wrapped into a one-triple bundle.
			if b, err := toolchain.ParseCode(data); err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "  ships as:   one-triple bundle %s for %s, code hash %s\n", b.Name, b.Objects[0].Triple, b.Hash())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noCompile, "no-compile", false, "do not compile the bundle's bitcode with the local llc")
	return cmd
}

func inspectObject(w io.Writer, name string, obj []byte) error {
	info, err := loader.Inspect(obj)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(w, "%s: ELF relocatable object, %v, %d bytes\n", name, info.Machine, len(obj))
	fmt.Fprintf(w, "  entries:    %v\n", info.Entries)
	fmt.Fprintf(w, "  sizes:      text %d, rodata %d, data %d\n", info.Text, info.ROData, info.Data)
	fmt.Fprintf(w, "  undefined:  %v\n", info.Undefined)
	types := make([]string, 0, len(info.Relocations))
	total := 0
	for t, n := range info.Relocations {
		types = append(types, t)
		total += n
	}
	sort.Strings(types)
	fmt.Fprintf(w, "  relocations: %d\n", total)
	for _, t := range types {
		fmt.Fprintf(w, "    %-32s %d\n", t, info.Relocations[t])
	}
	tab, err := hostrt.Table()
	if err != nil {
		return err
	}
	if err := loader.Check(obj, tab); err != nil {
		fmt.Fprintf(w, "  loadable:   no: %v\n", err)
	} else {
		fmt.Fprintf(w, "  loadable:   yes (against the host runtime)\n")
	}
	return nil
}
