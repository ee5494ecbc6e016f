package licensing

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/lcorp/licensing-controller/internal/audit"
	"github.com/lcorp/licensing-controller/internal/fault"
)

// defaultNamespace derives the Default allocation's id from the account
// access key, so the Default exists (virtually) before it is ever stored.
var defaultNamespace = uuid.MustParse("8a4e3f1c-51b2-4f0e-9d7a-2c6b0e5d9f13")

func virtualDefault(acc Account) Allocation {
	return Allocation{ID: uuid.NewSHA1(defaultNamespace, []byte(acc.AccessKey)).String(), AccountID: acc.ID,
		Name: DefaultAllocationName, LicenseKey: acc.AccessKey, IsDefault: true, Tags: []string{},
		CreatedAt: acc.CreatedAt, UpdatedAt: acc.CreatedAt}
}

// view returns every allocation of the account, Default first with its
// derived limits, and the licensed units they were derived from.
func (s *Service) view(ctx context.Context, tx Store, acc Account) ([]Allocation, map[string]int64, error) {
	all, err := tx.FindAllocations(ctx, acc.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("load allocations: %w", err)
	}
	licensed, err := s.licensedUnits(ctx, tx, acc)
	if err != nil {
		return nil, nil, err
	}
	i := slices.IndexFunc(all, func(a Allocation) bool { return a.IsDefault })
	def := virtualDefault(acc)
	if i >= 0 {
		def = all[i]
		all = slices.Delete(all, i, i+1)
	}
	DeriveDefaultLimits(&def, all, licensed)
	return append([]Allocation{def}, all...), licensed, nil
}

// inAccountTx runs fn in one transaction that holds the account's lock, so
// that checks against the other allocations and the write cannot race.
func (s *Service) inAccountTx(ctx context.Context, accountID int64,
	fn func(tx Store, acc Account, all []Allocation, licensed map[string]int64) error) error {
	return s.store.InTx(ctx, func(tx Store) error {
		acc, err := tx.LockAccount(ctx, accountID)
		if err != nil {
			return err
		}
		all, licensed, err := s.view(ctx, tx, acc)
		if err != nil {
			return err
		}
		return fn(tx, acc, all, licensed)
	})
}

// checkChange refuses a change of the explicit allocations (all holds the
// Default first, as view returns it) that raises a package's total above
// the licensed units, or that would leave the Default allocation a limit
// below what its running leases charge now: the units taken from the
// Default are in use, and handing them to another allocation would sell
// them twice. A write that does not raise a package's total is allowed.
// Errors: ErrConflict (OVER_ALLOCATION).
func (s *Service) checkChange(ctx context.Context, tx Store, all, after []Allocation, licensed map[string]int64) error {
	before := explicitOnly(all)
	if err := CheckAllocationChange(before, after, licensed); err != nil {
		return err
	}
	var used map[string]int64
	for _, pkg := range Packages {
		total := sumOf(after, pkg)
		if total <= sumOf(before, pkg) {
			continue
		}
		if used == nil {
			var err error
			if used, err = tx.PoolUsage(ctx, all[0].AccountID, all[0].ID); err != nil {
				return err
			}
		}
		left := max(SatSub(licensed[pkg], total), 0)
		if used[pkg] > left {
			return &fault.Error{Kind: fault.ErrConflict, Code: "OVER_ALLOCATION",
				Detail: fmt.Sprintf("the Default allocation's agents use %d %s units now; this change would leave it %d", used[pkg], pkg, left),
				Extra:  map[string]any{"package": pkg, "requestedUnits": total, "licensedUnits": licensed[pkg], "defaultUsedUnits": used[pkg]}}
		}
	}
	return nil
}

// AllocationQuery narrows a listing; at most one field may be set.
type AllocationQuery struct {
	Name, LicenseKey, Tag string
}

// Allocations lists the account's allocations. Errors: ErrInvalid (CONFLICTING_FILTERS).
func (s *Service) Allocations(ctx context.Context, accountID int64, q AllocationQuery) ([]Allocation, error) {
	n := 0
	for _, v := range []string{q.Name, q.LicenseKey, q.Tag} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return nil, &fault.Error{Kind: fault.ErrInvalid, Code: "CONFLICTING_FILTERS",
			Detail: "use at most one of name, license-key and tag"}
	}
	acc, err := s.store.FindAccount(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("list allocations: %w", err)
	}
	all, _, err := s.view(ctx, s.store, acc)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(a Allocation) bool {
		return (q.Name != "" && a.Name != q.Name) || (q.LicenseKey != "" && a.LicenseKey != q.LicenseKey) ||
			(q.Tag != "" && !slices.Contains(a.Tags, q.Tag))
	}), nil
}

func allocationNotFound(id string) error {
	return fault.New(fault.ErrNotFound, "ALLOCATION_NOT_FOUND", "allocation %s not found", id)
}

// Allocation returns one allocation. Errors: ErrNotFound (ALLOCATION_NOT_FOUND).
func (s *Service) Allocation(ctx context.Context, accountID int64, id string) (Allocation, error) {
	all, err := s.Allocations(ctx, accountID, AllocationQuery{})
	if err != nil {
		return Allocation{}, err
	}
	i := slices.IndexFunc(all, func(a Allocation) bool { return a.ID == id })
	if i < 0 {
		return Allocation{}, allocationNotFound(id)
	}
	return all[i], nil
}

func nameTaken(name string) error {
	return fault.New(fault.ErrConflict, "NAME_TAKEN", "an allocation named %q exists", name)
}

// withIDs gives new sub-entities ids and keeps the ids clients sent back,
// which must be ids of cur's own filters and limits (cur nil: a create,
// where sub-entity ids are server-owned and ignored). Errors: ErrInvalid.
func withIDs(in AllocationInput, cur *Allocation) ([]Filter, []Limit, []string, error) {
	var fields []fault.FieldError
	fs := slices.Clone(in.Filters)
	for i := range fs {
		switch {
		case cur == nil || fs[i].ID == "":
			fs[i].ID = uuid.NewString()
		case !slices.ContainsFunc(cur.Filters, func(f Filter) bool { return f.ID == fs[i].ID }):
			fields = append(fields, fault.FieldError{Field: fmt.Sprintf("filters[%d].id", i),
				Message: "is not the id of one of this allocation's filters: omit it for a new filter"})
		}
	}
	ls := slices.Clone(in.Limits)
	for i := range ls {
		switch {
		case cur == nil || ls[i].ID == "":
			ls[i].ID = uuid.NewString()
		case !slices.ContainsFunc(cur.Limits, func(l Limit) bool { return l.ID == ls[i].ID }):
			fields = append(fields, fault.FieldError{Field: fmt.Sprintf("limits[%d].id", i),
				Message: "is not the id of one of this allocation's limits: omit it for a new limit"})
		}
	}
	if err := fault.Invalids(fields); err != nil {
		return nil, nil, nil, err
	}
	tags := slices.Clone(in.Tags)
	if tags == nil {
		tags = []string{}
	}
	return fs, ls, tags, nil
}

// CreateAllocation adds an allocation with a generated licence key. The
// over-allocation check and the insert are one transaction serialised on
// the account. Errors: ErrInvalid, ErrConflict (NAME_TAKEN, OVER_ALLOCATION).
func (s *Service) CreateAllocation(ctx context.Context, accountID int64, in AllocationInput) (Allocation, error) {
	if err := in.Validate(); err != nil {
		return Allocation{}, err
	}
	var out Allocation
	err := s.inAccountTx(ctx, accountID, func(tx Store, _ Account, all []Allocation, licensed map[string]int64) error {
		if slices.ContainsFunc(all, func(a Allocation) bool { return a.Name == in.Name }) {
			return nameTaken(in.Name)
		}
		now := s.now().UTC()
		a := Allocation{ID: uuid.NewString(), AccountID: accountID, Name: in.Name, LicenseKey: uuid.NewString(),
			FallbackModeDelay: in.FallbackModeDelay, MachineAgentPriority: in.MachineAgentPriority,
			Disabled: in.Disabled, CreatedAt: now, UpdatedAt: now}
		var err error
		if a.Filters, a.Limits, a.Tags, err = withIDs(in, nil); err != nil {
			return err
		}
		if err := s.checkChange(ctx, tx, all, append(explicitOnly(all), a), licensed); err != nil {
			return err
		}
		if err := tx.CreateAllocation(ctx, &a); err != nil {
			if errors.Is(err, fault.ErrConflict) {
				return nameTaken(in.Name)
			}
			return err
		}
		out = a
		return audit.Record(ctx, tx, accountID, now, audit.Create, allocationResource(a), nil, allocationAudit(a))
	})
	if err != nil {
		return Allocation{}, fmt.Errorf("create allocation %q: %w", in.Name, err)
	}
	return out, nil
}

func errDefault(what string) error {
	return fault.New(fault.ErrConflict, "DEFAULT_ALLOCATION", "the Default allocation %s", what)
}

// UpdateAllocation replaces name, filters, limits, tags and flags. The
// Default allocation keeps its name, has no filters and derived limits.
// Errors: ErrInvalid, ErrNotFound, ErrConflict (NAME_TAKEN, OVER_ALLOCATION,
// DEFAULT_ALLOCATION).
func (s *Service) UpdateAllocation(ctx context.Context, accountID int64, id string, in AllocationInput) (Allocation, error) {
	if err := in.Validate(); err != nil {
		return Allocation{}, err
	}
	var out Allocation
	err := s.inAccountTx(ctx, accountID, func(tx Store, _ Account, all []Allocation, licensed map[string]int64) error {
		i := slices.IndexFunc(all, func(a Allocation) bool { return a.ID == id })
		if i < 0 {
			return allocationNotFound(id)
		}
		a := all[i]
		if a.IsDefault {
			switch {
			case in.Name != DefaultAllocationName:
				return errDefault("cannot be renamed")
			case len(in.Filters) > 0 || len(in.Limits) > 0:
				return errDefault("has no filters and derived limits: send none")
			}
		}
		if slices.ContainsFunc(all, func(o Allocation) bool { return o.Name == in.Name && o.ID != id }) {
			return nameTaken(in.Name)
		}
		a.Name, a.FallbackModeDelay, a.MachineAgentPriority = in.Name, in.FallbackModeDelay, in.MachineAgentPriority
		a.Disabled = in.Disabled
		var err error
		if a.Filters, a.Limits, a.Tags, err = withIDs(in, &all[i]); err != nil {
			return err
		}
		a.UpdatedAt = s.now().UTC()
		if a.IsDefault {
			a.Limits = nil // derived, never stored
			if err := tx.UpdateAllocation(ctx, &a); errors.Is(err, fault.ErrNotFound) {
				err = tx.CreateAllocation(ctx, &a) // first write of the virtual Default
				if err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
			DeriveDefaultLimits(&a, explicitOnly(all), licensed)
			out = a
			return audit.Record(ctx, tx, accountID, a.UpdatedAt, audit.Update, allocationResource(a), allocationAudit(all[i]), allocationAudit(a))
		}
		others := slices.DeleteFunc(explicitOnly(all), func(o Allocation) bool { return o.ID == id })
		if err := s.checkChange(ctx, tx, all, append(others, a), licensed); err != nil {
			return err
		}
		if err := tx.UpdateAllocation(ctx, &a); err != nil {
			if errors.Is(err, fault.ErrConflict) {
				return nameTaken(in.Name)
			}
			return err
		}
		out = a
		return audit.Record(ctx, tx, accountID, a.UpdatedAt, audit.Update, allocationResource(a), allocationAudit(all[i]), allocationAudit(a))
	})
	if err != nil {
		return Allocation{}, fmt.Errorf("update allocation %s: %w", id, err)
	}
	return out, nil
}

// DeleteAllocation removes an allocation. One that holds leases is refused
// unless force, which releases them. Errors: ErrNotFound, ErrConflict
// (DEFAULT_ALLOCATION, ALLOCATION_IN_USE).
func (s *Service) DeleteAllocation(ctx context.Context, accountID int64, id string, force bool) error {
	err := s.store.InTx(ctx, func(tx Store) error {
		acc, err := tx.LockAccount(ctx, accountID)
		if err != nil {
			return err
		}
		if id == virtualDefault(acc).ID {
			return errDefault("cannot be deleted")
		}
		all, err := tx.FindAllocations(ctx, accountID)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(all, func(a Allocation) bool { return a.ID == id })
		if i < 0 {
			return allocationNotFound(id)
		}
		if err := s.deletePool(ctx, tx, accountID, id, "ALLOCATION_IN_USE", "ALLOCATION_DELETED", "allocation "+id, force); err != nil {
			return err
		}
		if err := tx.DeleteAllocation(ctx, accountID, id); err != nil {
			if errors.Is(err, fault.ErrNotFound) {
				return allocationNotFound(id)
			}
			return err
		}
		return audit.Record(ctx, tx, accountID, s.now(), audit.Delete, allocationResource(all[i]), allocationAudit(all[i]), nil)
	})
	if err != nil {
		return fmt.Errorf("delete allocation %s: %w", id, err)
	}
	return nil
}

// PoolUsages returns what each of the account's pools (allocations or
// rules) charges now, per package or module, in one read; other
// accounts' pools are empty.
func (s *Service) PoolUsages(ctx context.Context, accountID int64, poolIDs []string) (map[string]map[string]int64, error) {
	out, err := s.store.PoolUsages(ctx, accountID, poolIDs)
	if err != nil {
		return nil, fmt.Errorf("pool usage: %w", err)
	}
	return out, nil
}
