package licensing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/lcorp/licensing-controller/internal/audit"
	"github.com/lcorp/licensing-controller/internal/fault"
)

// License is a stored licence document.
type License struct {
	ID        string
	AccountID int64
	Document  string // the licence JSON as uploaded
	Builtin   bool   // the trial licence of a new database: not signed
	Payload   Payload
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Account is what the licence domain needs of an account.
type Account struct {
	ID        int64
	Name      string
	GlobalID  string
	AccessKey string
	CreatedAt time.Time
	// Revision moves with every write of the account's licences,
	// allocations and rules (LockAccount).
	Revision int64
}

// Store is the persistence of licences and allocations. Errors wrap
// fault.ErrNotFound and fault.ErrConflict.
type Store interface {
	InTx(ctx context.Context, fn func(Store) error) error
	// AppendAudit records a write in the transaction (audit.Record).
	audit.Appender
	// LockAccount serialises writers of one account's allocations and
	// licences until the transaction ends.
	LockAccount(ctx context.Context, accountID int64) (Account, error)
	FindAccount(ctx context.Context, accountID int64) (Account, error)
	// AccountRevision reads the account's revision alone (ErrNotFound).
	AccountRevision(ctx context.Context, accountID int64) (int64, error)

	// CreateLicense inserts a licence; ErrConflict when its id is taken
	// (by any account: ids are global).
	CreateLicense(ctx context.Context, l *License) error
	// UpdateLicense replaces the account's licence l.ID; ErrNotFound when
	// the account has no licence of that id.
	UpdateLicense(ctx context.Context, l *License) error
	FindLicense(ctx context.Context, accountID int64, id string) (License, error)
	FindLicenses(ctx context.Context, accountID int64, offset, limit int) ([]License, error)
	DeleteLicense(ctx context.Context, accountID int64, id string) error

	CreateAllocation(ctx context.Context, a *Allocation) error
	UpdateAllocation(ctx context.Context, a *Allocation) error
	DeleteAllocation(ctx context.Context, accountID int64, id string) error
	FindAllocations(ctx context.Context, accountID int64) ([]Allocation, error)

	CreateRule(ctx context.Context, r *Rule) error
	// UpdateRule writes r (with its new version) only where the stored
	// version is still version; ErrNotFound when no row matches.
	UpdateRule(ctx context.Context, r *Rule, version int64) error
	DeleteRule(ctx context.Context, accountID int64, id string) error // with its history
	FindRules(ctx context.Context, accountID int64) ([]Rule, error)
	// FindRule finds a rule of the account; accountID 0 searches every account.
	FindRule(ctx context.Context, accountID int64, by RuleLookup) (Rule, error)
	AddRuleVersion(ctx context.Context, r Rule) error // a superseded version
	FindRuleVersions(ctx context.Context, accountID int64, id string) ([]Rule, error)

	// CountPoolLeases counts the live leases that an allocation or rule of
	// the account holds (0 for another account's pool).
	CountPoolLeases(ctx context.Context, accountID int64, poolID string) (int64, error)
	// PoolUsage returns the units an allocation of the account charges now,
	// per package (empty for another account's pool).
	PoolUsage(ctx context.Context, accountID int64, poolID string) (map[string]int64, error)
	// PoolUsages is PoolUsage of several pools, in one read.
	PoolUsages(ctx context.Context, accountID int64, poolIDs []string) (map[string]map[string]int64, error)
	// ReleasePool releases every lease of the account's pool (recording
	// each release) and forgets its charges.
	// reason is the release events' reason (ALLOCATION_DELETED, RULE_DELETED).
	ReleasePool(ctx context.Context, accountID int64, poolID, reason string, now time.Time) error
}

// deletePool refuses to delete an allocation or rule that holds leases
// (code, 409) unless force, which releases them in the same transaction.
func (s *Service) deletePool(ctx context.Context, tx Store, accountID int64, poolID, code, reason, what string, force bool) error {
	n, err := tx.CountPoolLeases(ctx, accountID, poolID)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if !force {
		return &fault.Error{Kind: fault.ErrConflict, Code: code,
			Detail: fmt.Sprintf("%s holds %d live leases: release them or delete with ?force=true", what, n),
			Extra:  map[string]any{"leases": n}}
	}
	return tx.ReleasePool(ctx, accountID, poolID, reason, s.now().UTC())
}

// Service implements licences, account information, allocations and
// licence rules.
type Service struct {
	store    Store
	verifier *Verifier
	now      func() time.Time
	// views caches /info's view of each account per revision; nil for a
	// service bound to a transaction (DryRun), which must not keep any.
	views *viewCache
}

type viewCache struct {
	mu sync.Mutex
	m  map[int64]*infoView
}

// NewService returns a Service; now may be nil (time.Now).
func NewService(store Store, verifier *Verifier, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, verifier: verifier, now: now, views: &viewCache{}}
}

// InstallTrial stores the built-in trial licence for an account that has no
// licence yet (the bootstrap of a new database).
func (s *Service) InstallTrial(ctx context.Context, accountID int64) error {
	return s.store.InTx(ctx, func(tx Store) error {
		acc, err := tx.LockAccount(ctx, accountID)
		if err != nil {
			return fmt.Errorf("install trial licence: %w", err)
		}
		ls, err := tx.FindLicenses(ctx, accountID, 0, 1)
		if err != nil || len(ls) > 0 {
			return err
		}
		now := s.now().UTC()
		l := License{ID: uuid.NewString(), AccountID: accountID, Builtin: true,
			Payload: TrialPayload(acc.Name, now), CreatedAt: now, UpdatedAt: now}
		if err := tx.CreateLicense(ctx, &l); err != nil {
			return err
		}
		return audit.Record(ctx, tx, accountID, now, audit.Create, licenseResource(l), nil, licenseAudit(l))
	})
}

// effective returns the account's effective licence: the valid one with the
// newest updated_at; when none is valid, the newest one that is genuine but
// expired (so /info can say EXPIRED). ok is false without any.
func (s *Service) effective(ctx context.Context, tx Store, acc Account) (License, bool, error) {
	ls, err := s.trusted(ctx, tx, acc)
	if err != nil {
		return License{}, false, err
	}
	l, ok := effectiveOf(ls, s.now())
	return l, ok, nil
}

// trusted returns the account's licences that are genuine and its own,
// newest updated_at first, with their verified payloads.
func (s *Service) trusted(ctx context.Context, tx Store, acc Account) ([]License, error) {
	ls, err := tx.FindLicenses(ctx, acc.ID, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("load licences: %w", err)
	}
	out := ls[:0]
	for _, l := range ls {
		if !l.Builtin {
			p, err := s.verifier.verifySignature([]byte(l.Document))
			if err != nil || p.AccountName != acc.Name {
				continue // no longer trusted (key rotated) or not ours
			}
			l.Payload = p
		}
		out = append(out, l)
	}
	return out, nil
}

// effectiveOf picks the effective licence at now of trusted licences,
// newest first.
func effectiveOf(ls []License, now time.Time) (License, bool) {
	for _, l := range ls {
		if !now.After(l.Payload.ExpirationDate) {
			return l, true
		}
	}
	if len(ls) > 0 {
		return ls[0], true // the newest, expired
	}
	return License{}, false
}

// licensedUnits is the usable units per package of the effective licence.
func (s *Service) licensedUnits(ctx context.Context, tx Store, acc Account) (map[string]int64, error) {
	l, ok, err := s.effective(ctx, tx, acc)
	if err != nil || !ok {
		return map[string]int64{}, err
	}
	return l.Payload.Units(s.now()), nil
}

// Info is /info: the effective licence with its computed status.
type Info struct {
	AccountID     int64
	License       License
	Status        string
	OverAllocated bool
	// Version changes whenever anything /info shows may have: the
	// account's revision, the effective licence, the status or the
	// over-allocation. An answer rendered for one Version serves again.
	Version string
}

// AccountInfo returns the account's effective licence. Errors: ErrNotFound (NO_LICENSE).
func (s *Service) AccountInfo(ctx context.Context, accountID int64) (Info, error) {
	rev, err := s.store.AccountRevision(ctx, accountID)
	if err != nil {
		return Info{}, fmt.Errorf("account info: %w", err)
	}
	v, err := s.infoView(ctx, accountID, rev)
	if err != nil {
		return Info{}, err
	}
	now := s.now()
	l, ok := effectiveOf(v.licences, now)
	if !ok {
		return Info{}, fault.New(fault.ErrNotFound, "NO_LICENSE", "account %d has no licence", accountID)
	}
	over := CheckOverAllocation(v.explicit, l.Payload.Units(now)) != nil
	status := l.Payload.Status(now)
	return Info{AccountID: accountID, License: l, Status: status, OverAllocated: over,
		Version: fmt.Sprintf("%d/%s/%s/%t", v.revision, l.ID, status, over)}, nil
}

// infoView is what /info derives from an account's stored state at one
// revision: its trusted licences and explicit allocations. The effective
// licence and the status depend on the time and are chosen per request.
type infoView struct {
	revision int64
	licences []License
	explicit []Allocation
}

// infoView returns the account's view at revision rev, loading it when
// the revision moved. It reads outside any transaction only: a view of a
// transaction that rolls back must never be kept.
func (s *Service) infoView(ctx context.Context, accountID, rev int64) (*infoView, error) {
	var v *infoView
	if s.views != nil {
		s.views.mu.Lock()
		v = s.views.m[accountID]
		s.views.mu.Unlock()
	}
	if v != nil && v.revision == rev {
		return v, nil
	}
	acc, err := s.store.FindAccount(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("account info: %w", err)
	}
	ls, err := s.trusted(ctx, s.store, acc)
	if err != nil {
		return nil, fmt.Errorf("account info: %w", err)
	}
	allocs, err := s.store.FindAllocations(ctx, acc.ID)
	if err != nil {
		return nil, fmt.Errorf("account info: %w", err)
	}
	// Tagged with the revision read first: what was loaded is at least as
	// new, and a later revision loads again.
	v = &infoView{revision: rev, licences: ls, explicit: explicitOnly(allocs)}
	if s.views != nil {
		s.views.mu.Lock()
		if s.views.m == nil || len(s.views.m) >= maxInfoViews {
			s.views.m = map[int64]*infoView{}
		}
		s.views.m[acc.ID] = v
		s.views.mu.Unlock()
	}
	return v, nil
}

// maxInfoViews bounds the cached views (one per account).
const maxInfoViews = 10000

func explicitOnly(as []Allocation) []Allocation {
	return slices.DeleteFunc(slices.Clone(as), func(a Allocation) bool { return a.IsDefault })
}

// UntrustedLicenses returns the account's uploaded licences whose
// signature no trusted key verifies now (a key missing from
// LC_LICENSE_PUBLIC_KEYS, a rotated one): they count for nothing.
func (s *Service) UntrustedLicenses(ctx context.Context, accountID int64) ([]License, error) {
	acc, err := s.store.FindAccount(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("untrusted licences: %w", err)
	}
	ls, err := s.store.FindLicenses(ctx, accountID, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("untrusted licences: %w", err)
	}
	var out []License
	for _, l := range ls {
		if l.Builtin {
			continue
		}
		if p, err := s.verifier.verifySignature([]byte(l.Document)); err != nil || p.AccountName != acc.Name {
			out = append(out, l)
		}
	}
	return out, nil
}

// Licenses pages through the account's licences, newest first.
func (s *Service) Licenses(ctx context.Context, accountID int64, offset, limit int) ([]License, error) {
	ls, err := s.store.FindLicenses(ctx, accountID, offset, limit)
	if err != nil {
		return nil, fmt.Errorf("list licences: %w", err)
	}
	return ls, nil
}

func licenseNotFound(id string, err error) error {
	if errors.Is(err, fault.ErrNotFound) {
		return fault.New(fault.ErrNotFound, "LICENSE_NOT_FOUND", "licence %s not found", id)
	}
	return err
}

// License returns one licence. Errors: ErrNotFound.
func (s *Service) License(ctx context.Context, accountID int64, id string) (License, error) {
	l, err := s.store.FindLicense(ctx, accountID, id)
	if err != nil {
		return License{}, fmt.Errorf("load licence: %w", licenseNotFound(id, err))
	}
	return l, nil
}

// PutLicense verifies document and stores it under id (a new UUID when id
// is empty). mustExist makes it a PATCH. created tells a new licence from a
// replaced one. Errors: ErrInvalid (INVALID_LICENSE), ErrNotFound.
func (s *Service) PutLicense(ctx context.Context, accountID int64, id, document string, mustExist bool) (l License, created bool, err error) {
	if id == "" {
		id = uuid.NewString()
	} else if _, perr := uuid.Parse(id); perr != nil {
		return License{}, false, fault.Invalid("id", "must be a UUID")
	}
	err = s.store.InTx(ctx, func(tx Store) error {
		acc, err := tx.LockAccount(ctx, accountID)
		if err != nil {
			return err
		}
		p, err := s.verifier.Verify([]byte(document), acc.Name, s.now())
		if err != nil {
			return err
		}
		now := s.now().UTC()
		old, err := tx.FindLicense(ctx, accountID, id)
		switch {
		case errors.Is(err, fault.ErrNotFound):
			if mustExist {
				return licenseNotFound(id, err)
			}
			created = true
			l = License{ID: id, AccountID: accountID, CreatedAt: now}
		case err != nil:
			return err
		default:
			l = old
		}
		l.Document, l.Payload, l.Builtin, l.UpdatedAt = document, p, false, now
		if !created {
			if err := tx.UpdateLicense(ctx, &l); err != nil {
				return err
			}
			return audit.Record(ctx, tx, accountID, now, audit.Update, licenseResource(l), licenseAudit(old), licenseAudit(l))
		}
		// An id another account holds is not found here, as every other
		// account's id is: the insert must not touch that account's row.
		if err := tx.CreateLicense(ctx, &l); errors.Is(err, fault.ErrConflict) {
			return fault.New(fault.ErrNotFound, "LICENSE_NOT_FOUND", "licence %s not found", id)
		} else if err != nil {
			return err
		}
		return audit.Record(ctx, tx, accountID, now, audit.Create, licenseResource(l), nil, licenseAudit(l))
	})
	if err != nil {
		return License{}, false, fmt.Errorf("store licence %s: %w", id, err)
	}
	return l, created, nil
}

// DeleteLicense removes a licence. Errors: ErrNotFound.
func (s *Service) DeleteLicense(ctx context.Context, accountID int64, id string) error {
	err := s.store.InTx(ctx, func(tx Store) error {
		// The lock moves the account's revision: cached views of it go.
		if _, err := tx.LockAccount(ctx, accountID); err != nil {
			return err
		}
		l, err := tx.FindLicense(ctx, accountID, id)
		if err != nil {
			return licenseNotFound(id, err)
		}
		if err := tx.DeleteLicense(ctx, accountID, id); err != nil {
			return licenseNotFound(id, err)
		}
		return audit.Record(ctx, tx, accountID, s.now(), audit.Delete, licenseResource(l), licenseAudit(l), nil)
	})
	if err != nil {
		return fmt.Errorf("delete licence: %w", err)
	}
	return nil
}

// errDryRun rolls a dry run's transaction back.
var errDryRun = errors.New("dry run: rolled back")

// DryRun runs fn with a Service whose writes all happen in one transaction
// that is rolled back: what a real write would answer, nothing changed.
// It returns fn's error.
func (s *Service) DryRun(ctx context.Context, fn func(*Service) error) error {
	var inner error
	err := s.store.InTx(ctx, func(tx Store) error {
		d := *s
		d.store, d.views = tx, nil
		if inner = fn(&d); inner != nil {
			return inner
		}
		return errDryRun
	})
	if inner != nil {
		return inner
	}
	if errors.Is(err, errDryRun) {
		return nil
	}
	return err
}
