package licensing

import (
	"context"
	"fmt"
	"time"
)

// Pools is what the usage engine needs of an account at one revision: its
// allocations with effective limits (Default first), its rules and the
// terms of the effective licence.
type Pools struct {
	Account     Account
	Revision    int64
	Allocations []Allocation
	Rules       []Rule
	// HasLicense is false when the account has no licence at all.
	HasLicense bool
	Expires    time.Time
	// FallbackUnits per agent type, from the licence (may be empty).
	FallbackUnits map[string]int64
}

// Pools reads the account's pools through st (which may be bound to the
// caller's transaction). Limits of the Default allocation are derived at
// the service's clock.
func (s *Service) Pools(ctx context.Context, st Store, accountID int64) (Pools, error) {
	acc, err := st.FindAccount(ctx, accountID)
	if err != nil {
		return Pools{}, fmt.Errorf("load pools: %w", err)
	}
	allocs, _, err := s.view(ctx, st, acc)
	if err != nil {
		return Pools{}, err
	}
	rules, err := st.FindRules(ctx, accountID)
	if err != nil {
		return Pools{}, fmt.Errorf("load pools: %w", err)
	}
	p := Pools{Account: acc, Allocations: allocs, Rules: withGlobalID(acc, rules...), FallbackUnits: map[string]int64{}}
	l, ok, err := s.effective(ctx, st, acc)
	if err != nil {
		return Pools{}, err
	}
	if ok {
		p.HasLicense, p.Expires = true, l.Payload.ExpirationDate
		for k, v := range l.Payload.FallbackUnits {
			p.FallbackUnits[k] = v
		}
	}
	return p, nil
}
