package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lcorp/licensing-controller/internal/fault"
)

// Releases that arrive together are done by one transaction (together.go)
// where the database runs one write transaction at a time (SQLite; on
// PostgreSQL releases of different pools run in parallel, and a
// transaction of many releases one after the other was slower: 16
// connections released 713-744/s alone, 429/s together). Each lease is released as a lone release releases it, one after the
// other, with the pools locked in the order of their ids (as registration
// batches lock them). A registration that is not found is that release's
// own answer; when the transaction fails, each of its releases is done
// again alone, which tells why.

// maxReleases bounds the releases of one transaction of queued releases.
const maxReleases = 128

// releaseTimeout bounds a transaction of queued releases; it runs detached
// from the requests that queued them.
const releaseTimeout = 10 * time.Second

type queuedRelease struct {
	id    string
	err   error // the release's outcome in the batch
	alone bool  // the batch failed: release it on its own
	done  chan struct{}
}

// Release gives a lease back. Errors: ErrNotFound (REGISTRATION_NOT_FOUND).
func (e *Engine) Release(ctx context.Context, accountID int64, id string) error {
	p := &queuedRelease{id: id, done: make(chan struct{})}
	var err error
	if !e.store.SerialWrites() {
		err = e.releaseAlone(ctx, accountID, id)
	} else if e.releases.join(accountID, p) {
		err = e.releaseAlone(ctx, accountID, id)
		e.releases.done(accountID)
	} else {
		select {
		case <-p.done:
			err = p.err
			if p.alone {
				err = e.releaseAlone(ctx, accountID, id)
			}
		case <-ctx.Done(): // the batch releases it all the same
			err = ctx.Err()
		}
	}
	if err != nil {
		return fmt.Errorf("release %s: %w", id, err)
	}
	return nil
}

func (e *Engine) releaseAlone(ctx context.Context, accountID int64, id string) error {
	e.releaseBatch.Observe(1)
	return e.store.InTx(ctx, func(tx Store) error {
		l, err := tx.FindLease(ctx, accountID, id)
		if errors.Is(err, fault.ErrNotFound) {
			return registrationNotFound(id)
		} else if err != nil {
			return err
		}
		return e.release(ctx, tx, l, EventReleased, "", e.now().UTC())
	})
}

// releaseQueued releases queued registrations in one transaction.
func (e *Engine) releaseQueued(accountID int64, batch []*queuedRelease) {
	defer func() {
		for _, p := range batch {
			close(p.done)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	e.releaseBatch.Observe(float64(len(batch)))
	err := e.store.InTx(ctx, func(tx Store) error {
		seen := make(map[string]bool, len(batch))
		found := make([]Lease, 0, len(batch))
		for _, p := range batch {
			p.err = nil
			if seen[p.id] { // released by the first of them
				p.err = registrationNotFound(p.id)
				continue
			}
			seen[p.id] = true
			l, err := tx.FindLease(ctx, accountID, p.id)
			if errors.Is(err, fault.ErrNotFound) {
				p.err = registrationNotFound(p.id)
				continue
			} else if err != nil {
				return err
			}
			found = append(found, l)
		}
		slices.SortFunc(found, func(a, b Lease) int { return cmp.Or(cmp.Compare(a.PoolID, b.PoolID), cmp.Compare(a.ID, b.ID)) })
		for _, l := range found {
			if err := e.release(ctx, tx, l, EventReleased, "", e.now().UTC()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.log.Debug("releasing queued registrations together failed; each is released alone", "releases", len(batch), "error", err)
		for _, p := range batch {
			p.alone = true
		}
	}
}
