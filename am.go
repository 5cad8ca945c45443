package bcship

import (
	"fmt"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/loader"
)

// amHandler is a predeployed kernel run by name when an AM arrives.
type amHandler struct {
	name  string
	entry string
	img   *loader.Image
	rec   entryRec // entry, resolved at registration
	speed speed    // of the handler: may it run inline (inline.go)
}

// lookup returns the record of entry name (the handler's own, resolved at
// registration, unless asked for another).
func (h *amHandler) lookup(name string) (*entryRec, error) {
	if name == h.entry {
		return &h.rec, nil
	}
	a, err := h.img.Symbol(name)
	if err != nil {
		return nil, err
	}
	return &entryRec{fn: a, speed: &h.speed}, nil
}

// RegisterAM loads code for this node's triple now and runs its entry when
// an active message for handler name arrives (CallAM): the baseline for
// comparisons with shipped code, the same run and outbox path minus
// shipping and the cache. Local code is trusted; no signature is checked.
// Registering a name again replaces the handler.
func (n *Node) RegisterAM(name string, code *bundle.Bundle, entry string) error {
	if name == "" || entry == "" {
		return fmt.Errorf("%w: AM handler needs a name and an entry", ErrConfig)
	}
	obj, err := n.objectFor(code)
	if err != nil {
		return err
	}
	img, err := loader.Load(obj, n.rt)
	if err != nil {
		return err
	}
	fn, err := img.Symbol(entry)
	if err != nil {
		img.Close()
		return err
	}
	h := &amHandler{name: name, entry: entry, img: img}
	h.rec = entryRec{fn: fn, speed: &h.speed}
	n.amMu.Lock()
	old := n.ams[name]
	n.ams[name] = h
	n.amMu.Unlock()
	if old != nil {
		// Runs of the old handler may be in flight; it stays mapped until
		// Close rather than risk unmapping running code.
		n.log.Warn("AM handler replaced; the old image stays mapped until Close", "handler", name)
		n.amMu.Lock()
		n.amOld = append(n.amOld, old)
		n.amMu.Unlock()
	}
	return nil
}
