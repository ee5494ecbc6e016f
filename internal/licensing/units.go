package licensing

import (
	"context"
	"fmt"
)

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
