package wire

// sizer is implemented by the messages sent on hot paths: AppendFrame
// grows a short buffer once, to the size of the frame, rather than letting
// each append double it (a FORWARD appended to a nil buffer took five
// allocations). Each size is the exact length AppendTo appends
// (TestSizes).
type sizer interface{ size() int }

func (m *Invoke) size() int {
	return len(m.Hash) + 4 + 8 + 1 + 1 + 2 + 4 + 2 + len(m.Entry) + 4 + len(m.Arg)
}

func (m *Forward) size() int  { return (*Invoke)(m).size() }
func (m *Result) size() int   { return 8 + 8 + 1 + 4 + len(m.Reply) }
func (m *ErrorMsg) size() int { return 2 + 8 + 2 + len(m.Text) }
func (m *Get) size() int      { return 8 + 4 + 2 + len(m.Region) }
func (m *GetReply) size() int { return 4 + len(m.Data) }
func (m *Put) size() int      { return 8 + 2 + len(m.Region) + 4 + len(m.Data) }
func (m *PutReply) size() int { return 2 }
func (m *AM) size() int       { return 4 + 8 + 1 + 2 + len(m.Handler) + 4 + len(m.Arg) }
