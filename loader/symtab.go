package loader

// SymbolTable resolves the undefined symbols of an object: host helpers,
// the runtime object's functions, registered data regions, or the globals of
// another loaded image.
type SymbolTable interface {
	Lookup(name string) (addr uintptr, ok bool)
}

// Symbols is a SymbolTable backed by a map.
type Symbols map[string]uintptr

// Lookup implements SymbolTable.
func (s Symbols) Lookup(name string) (uintptr, bool) {
	a, ok := s[name]
	return a, ok
}

// Chain is a SymbolTable that asks each of its tables in turn.
type Chain []SymbolTable

// Lookup implements SymbolTable.
func (c Chain) Lookup(name string) (uintptr, bool) {
	for _, t := range c {
		if t == nil {
			continue
		}
		if a, ok := t.Lookup(name); ok {
			return a, true
		}
	}
	return 0, false
}
