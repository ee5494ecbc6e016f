package store

// interned makes each distinct value of a read once: the strings, and the
// pointers to strings and integers, of its rows are shared between rows
// (read, never written through).
type interned struct {
	strs map[string]string
	ptrs map[string]*string
	ints map[int64]*int64
}

func newInterned() interned {
	return interned{strs: map[string]string{}, ptrs: map[string]*string{}, ints: map[int64]*int64{}}
}

// str is b as a string.
func (d interned) str(b []byte) string {
	if s, ok := d.strs[string(b)]; ok { // no copy made for the lookup
		return s
	}
	s := string(b)
	d.strs[s] = s
	return s
}

// ptr is str for a nullable column: nil for NULL.
func (d interned) ptr(b []byte) *string {
	if b == nil {
		return nil
	}
	if p, ok := d.ptrs[string(b)]; ok {
		return p
	}
	s := d.str(b)
	d.ptrs[s] = &s
	return &s
}

// int is a pointer to n.
func (d interned) int(n int64) *int64 {
	p, ok := d.ints[n]
	if !ok {
		p = &n
		d.ints[n] = p
	}
	return p
}
