package bcship

import "testing"

// TestPendingCalls: calls in the table and in its map alike are found,
// removed once, and failed together, whatever ids share a slot and however
// many are in flight.
func TestPendingCalls(t *testing.T) {
	var p pendingCalls
	ids := []uint64{1, 2, 257, 513, 3}        // 1, 257 and 513 share a slot
	for id := uint64(1000); id < 1600; id++ { // more than the table holds
		ids = append(ids, id)
	}
	for _, id := range ids {
		p.add(&call{id: id})
	}
	for _, id := range ids {
		if c := p.get(id); c == nil || c.id != id {
			t.Fatalf("get(%d) = %v", id, c)
		}
	}
	if c := p.get(4); c != nil {
		t.Fatalf("get(4) = call %d, never added", c.id)
	}
	for _, id := range []uint64{257, 1, 1300} {
		if c := p.remove(id); c == nil || c.id != id {
			t.Fatalf("remove(%d) = %v", id, c)
		}
		if c := p.remove(id); c != nil {
			t.Fatalf("removed %d twice", id)
		}
		if c := p.get(id); c != nil {
			t.Fatalf("get(%d) after its removal", id)
		}
	}
	if c := p.get(513); c == nil || c.id != 513 {
		t.Fatal("513 lost when the calls sharing its slot left")
	}
	p.add(&call{id: 1 + 256*7}) // into the slot 1 left
	odd := p.removeAll(func(c *call) bool { return c.id%2 == 1 })
	left := len(ids) - 3 + 1 - len(odd)
	for _, c := range odd {
		if c.id%2 != 1 {
			t.Fatalf("removeAll took call %d", c.id)
		}
	}
	n := 0
	for _, id := range append(ids, 1+256*7) {
		if c := p.get(id); c != nil {
			if id%2 == 1 {
				t.Fatalf("call %d left after removeAll", id)
			}
			n++
		}
	}
	if n != left {
		t.Fatalf("%d calls left, want %d", n, left)
	}
}
