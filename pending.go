package bcship

// pendingCalls holds the requests waiting for their answers, by request
// id; the node's pmu guards it. Ids come from one counter, so the requests
// in flight at once mostly fall in distinct slots of a small table, where
// finding one is an index: a map hashed and probed on both ends of every
// round trip (register, then the RESULT) cost ~50 ns of the ~0.7 µs a
// cached invoke spends in the caller. A call whose slot is taken (more
// than len(slots) requests in flight, or one that outlives len(slots)
// newer ones) goes to the map.
type pendingCalls struct {
	slots [256]*call
	more  map[uint64]*call
}

func (p *pendingCalls) slot(id uint64) **call { return &p.slots[id%uint64(len(p.slots))] }

func (p *pendingCalls) add(c *call) {
	if s := p.slot(c.id); *s == nil {
		*s = c
		return
	}
	if p.more == nil {
		p.more = map[uint64]*call{}
	}
	p.more[c.id] = c
}

// get returns call id, or nil when it is not pending.
func (p *pendingCalls) get(id uint64) *call {
	if c := *p.slot(id); c != nil && c.id == id {
		return c
	}
	return p.more[id]
}

// remove removes call id and returns it, or nil when it was not pending.
func (p *pendingCalls) remove(id uint64) *call {
	if s := p.slot(id); *s != nil && (*s).id == id {
		c := *s
		*s = nil
		return c
	}
	c := p.more[id]
	if c != nil {
		delete(p.more, id)
	}
	return c
}

// removeAll removes the calls for which match holds and returns them.
func (p *pendingCalls) removeAll(match func(*call) bool) []*call {
	var cs []*call
	for i, c := range p.slots {
		if c != nil && match(c) {
			cs = append(cs, c)
			p.slots[i] = nil
		}
	}
	for id, c := range p.more {
		if match(c) {
			cs = append(cs, c)
			delete(p.more, id)
		}
	}
	return cs
}
