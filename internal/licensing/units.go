package licensing

import (
	"context"
	"fmt"
)

// Account returns what the licence domain knows of an account. Errors:
// ErrNotFound.
func (s *Service) Account(ctx context.Context, accountID int64) (Account, error) {
	acc, err := s.store.FindAccount(ctx, accountID)
	if err != nil {
		return Account{}, fmt.Errorf("account %d: %w", accountID, err)
	}
	return acc, nil
}

// LicensedUnits returns the usable units per package of the account's
// effective licence at the service's clock (empty without a licence), read
// through st (which may be bound to the caller's transaction). The usage
// sampler records them as the account's provisioned units.
func (s *Service) LicensedUnits(ctx context.Context, st Store, accountID int64) (map[string]int64, error) {
	acc, err := st.FindAccount(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("licensed units: %w", err)
	}
	return s.licensedUnits(ctx, st, acc)
}

// AccountLicensedUnits is LicensedUnits through the service's own store.
func (s *Service) AccountLicensedUnits(ctx context.Context, accountID int64) (map[string]int64, error) {
	return s.LicensedUnits(ctx, s.store, accountID)
}
