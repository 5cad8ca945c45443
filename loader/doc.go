// Package loader turns relocatable ELF objects (ET_REL, as clang -c emits
// them) for x86_64 and aarch64 into linked, executable memory.
//
// Load maps an object read-write, lays its sections out in three
// page-aligned segments (code, read-only data, writable data), resolves its
// undefined symbols against a SymbolTable, applies every relocation, and
// only then makes the code executable: no page is ever writable and
// executable at once. On arm64 the instruction cache is synchronised before
// the image is returned.
//
// Calls to symbols outside the ±2 GiB (x86_64) or ±128 MiB (aarch64 BL/B)
// reach of the image go through stubs the loader emits in the code segment;
// GOT-relative references go through a GOT that is read-only once linked.
//
// Check links an object of either architecture into scratch memory without
// mapping it, so a node can tell whether an object would load before it
// ships it.
package loader
