package verbs

// CQEventCounts is how many events Wait returned for cq and how many the
// kernel reported reading for it when cq was destroyed (0 before Close).
func CQEventCounts(cq *CQ) (delivered, reported uint32) {
	cq.mu.Lock()
	defer cq.mu.Unlock()
	return cq.events.Load(), cq.reported
}
