package engine

import "sync"

// Writes of one account that arrive together are done together: a write
// that finds none of its kind running for its account runs at once, alone,
// in its own request; those that arrive while one runs queue up, and the
// next statement or transaction does them all (one round trip and one
// commit instead of one each). One run of an account at a time: a commit
// costs CPU more than it waits, and fewer, larger runs spend less of it.
// Single heartbeats (renew.go) and releases (release.go) go this way.

// together queues the writes J of each account.
type together[J any] struct {
	mu     sync.Mutex
	queues map[int64]*accountQueue[J]
	max    int                           // the most writes of one run
	run    func(accountID int64, js []J) // does a run of queued writes
}

type accountQueue[J any] struct {
	mu      sync.Mutex
	waiting []J
	running bool
}

func newTogether[J any](max int, run func(accountID int64, js []J)) *together[J] {
	return &together[J]{queues: map[int64]*accountQueue[J]{}, max: max, run: run}
}

// join tells the caller to do j alone now (true: it must call done after),
// or queues j for the next run (false: the caller waits for j's run to end).
func (t *together[J]) join(accountID int64, j J) bool {
	t.mu.Lock()
	q := t.queues[accountID]
	if q == nil {
		q = &accountQueue[J]{}
		t.queues[accountID] = q
	}
	t.mu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.running {
		q.running = true
		return true
	}
	q.waiting = append(q.waiting, j)
	return false
}

// done ends a lone write: writes that queued meanwhile are done by a
// drain of their own, detached from every request.
func (t *together[J]) done(accountID int64) {
	t.mu.Lock()
	q := t.queues[accountID]
	t.mu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting) == 0 {
		q.running = false
		return
	}
	go t.drain(accountID, q)
}

// drain does the queued writes in runs of up to max until none are left.
func (t *together[J]) drain(accountID int64, q *accountQueue[J]) {
	for {
		q.mu.Lock()
		n := min(len(q.waiting), t.max)
		if n == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		js := q.waiting[:n:n]
		q.waiting = q.waiting[n:]
		q.mu.Unlock()
		t.run(accountID, js)
	}
}
