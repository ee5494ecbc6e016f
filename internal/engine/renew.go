package engine

import (
	"context"
	"sync"
	"time"
)

// Live heartbeats are renewed together when they arrive together. A
// heartbeat that finds no queuedHeartbeat of its account running
// renews its lease at once, alone, as before; those that arrive while one
// runs queue up, and the next statement renews them all (one round trip
// and one commit instead of one each: on PostgreSQL the round trip's
// write alone was two fifths of a heartbeat's CPU). Each lease is renewed
// by the same conditional UPDATE either way, so a batch decides nothing
// a lone heartbeat would not; a lease the statement did not renew (gone,
// revoked, expired) and every lease of a statement that failed take the
// lone path, which tells why. One statement of an account runs at a time:
// a commit costs CPU more than it waits, and fewer, larger statements
// spend less of it (on PostgreSQL at 16 connections, two queues by lease
// id renewed 3 473-3 874/s, eight 2 412-2 774/s, one 4 759-5 670/s).

// maxRenewals bounds the leases of one queuedHeartbeat statement.
const maxRenewals = 256

// renewTimeout bounds a queuedHeartbeat statement run for queued heartbeats; it
// runs detached from the requests that queued it.
const renewTimeout = 10 * time.Second

type queuedHeartbeat struct {
	id    string
	res   *Renewed // nil: not renewed by the batch
	alone bool     // the batch failed: renew it on its own
	done  chan struct{}
}

type renewQueue struct {
	mu      sync.Mutex
	waiting []*queuedHeartbeat
	running bool
}

// renewLive renews a live lease, with others that arrive meanwhile. ok is
// false when there is no such live lease.
func (e *Engine) renewLive(ctx context.Context, accountID int64, id string) (Renewed, bool, error) {
	e.mu.Lock()
	q := e.renewals[accountID]
	if q == nil {
		q = &renewQueue{}
		e.renewals[accountID] = q
	}
	e.mu.Unlock()
	q.mu.Lock()
	if !q.running {
		q.running = true
		q.mu.Unlock()
		r, ok, err := e.renewAlone(ctx, accountID, id)
		e.handOver(accountID, q)
		return r, ok, err
	}
	p := &queuedHeartbeat{id: id, done: make(chan struct{})}
	q.waiting = append(q.waiting, p)
	q.mu.Unlock()
	select {
	case <-p.done:
	case <-ctx.Done(): // the batch renews it all the same
		return Renewed{}, false, ctx.Err()
	}
	if p.alone {
		return e.renewAlone(ctx, accountID, id)
	}
	if p.res == nil {
		return Renewed{}, false, nil
	}
	return *p.res, true, nil
}

func (e *Engine) renewAlone(ctx context.Context, accountID int64, id string) (Renewed, bool, error) {
	e.heartbeatBatch.Observe(1)
	now := e.now().UTC()
	rs, err := e.store.RenewLive(ctx, accountID, []string{id}, now, now.Add(e.opt.LeaseTTL))
	if err != nil || len(rs) != 1 {
		return Renewed{}, false, err
	}
	return rs[0], true, nil
}

// handOver ends a lone queuedHeartbeat: heartbeats that queued meanwhile are
// renewed by a drain of their own.
func (e *Engine) handOver(accountID int64, q *renewQueue) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting) == 0 {
		q.running = false
		return
	}
	go e.drainRenewals(accountID, q)
}

// drainRenewals renews queued heartbeats in statements of up to
// maxRenewals until none are left.
func (e *Engine) drainRenewals(accountID int64, q *renewQueue) {
	for {
		q.mu.Lock()
		n := min(len(q.waiting), maxRenewals)
		if n == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		batch := q.waiting[:n:n]
		q.waiting = q.waiting[n:]
		q.mu.Unlock()
		e.renewBatch(accountID, batch)
		for _, p := range batch {
			close(p.done)
		}
	}
}

func (e *Engine) renewBatch(accountID int64, batch []*queuedHeartbeat) {
	ctx, cancel := context.WithTimeout(context.Background(), renewTimeout)
	defer cancel()
	ids := make([]string, 0, len(batch))
	byID := make(map[string][]*queuedHeartbeat, len(batch))
	for _, p := range batch {
		if byID[p.id] == nil {
			ids = append(ids, p.id)
		}
		byID[p.id] = append(byID[p.id], p)
	}
	e.heartbeatBatch.Observe(float64(len(ids)))
	now := e.now().UTC()
	rs, err := e.store.RenewLive(ctx, accountID, ids, now, now.Add(e.opt.LeaseTTL))
	if err != nil {
		e.log.Debug("renewing queued heartbeats together failed; each is renewed alone", "heartbeats", len(batch), "error", err)
		for _, p := range batch {
			p.alone = true
		}
		return
	}
	for i := range rs {
		for _, p := range byID[rs[i].Lease.ID] {
			p.res = &rs[i]
		}
	}
}
