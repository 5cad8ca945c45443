package main

import (
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/bcship/bcship/internal/hostrt"
	"github.com/bcship/bcship/loader"
	"github.com/spf13/cobra"
)

func newInspect() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect FILE.o",
		Short: "Describe a kernel object and check that it would load",
		Long: `inspect prints an object's machine, entry points (functions marked
BC_ENTRY), section sizes, undefined symbols and relocation counts, and links
it against the host runtime's symbols with this build's loader to tell
whether it would load on a node.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			obj, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			return inspectObject(cmd.OutOrStdout(), args[0], obj)
		},
	}
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
