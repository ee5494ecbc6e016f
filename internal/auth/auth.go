// Package auth holds accounts, users, API clients, their roles and
// permissions, password hashing, bearer tokens and login throttling.
package auth

import (
	"context"
	"slices"
	"time"

	"github.com/lcorp/licensing-controller/internal/audit"
)

// Permission is one right of API.md §0.
type Permission string

// Permissions of API.md §0.
const (
	PermAccountLicense    Permission = "ACCOUNT_LICENSE"
	PermLicenseUsage      Permission = "LICENSE_USAGE"
	PermLicenseRule       Permission = "LICENSE_RULE"
	PermLicenseRuleWrite  Permission = "LICENSE_RULE_WRITE"
	PermLicenseWrite      Permission = "LICENSE_WRITE"
	PermAgentRegistration Permission = "AGENT_REGISTRATION"
	PermAccountAdmin      Permission = "ACCOUNT_ADMIN"
)

// Role is a built-in bundle of permissions.
type Role string

// Built-in roles.
const (
	RoleAccountOwner   Role = "account-owner"
	RoleLicenseAdmin   Role = "license-admin"
	RoleLicenseViewer  Role = "license-viewer"
	RoleAgentRegistrar Role = "agent-registrar"
)

var rolePermissions = map[Role][]Permission{
	RoleAccountOwner: {PermAccountLicense, PermLicenseUsage, PermLicenseRule, PermLicenseRuleWrite,
		PermLicenseWrite, PermAgentRegistration, PermAccountAdmin},
	RoleLicenseAdmin: {PermAccountLicense, PermLicenseUsage, PermLicenseRule, PermLicenseRuleWrite,
		PermLicenseWrite, PermAgentRegistration},
	RoleLicenseViewer:  {PermAccountLicense, PermLicenseUsage, PermLicenseRule},
	RoleAgentRegistrar: {PermAgentRegistration},
}

// Roles lists the built-in role names in a stable order.
func Roles() []Role {
	return []Role{RoleAccountOwner, RoleLicenseAdmin, RoleLicenseViewer, RoleAgentRegistrar}
}

// Valid reports whether r is a built-in role.
func (r Role) Valid() bool { _, ok := rolePermissions[r]; return ok }

// Permissions returns the permissions the role grants.
func (r Role) Permissions() []Permission { return slices.Clone(rolePermissions[r]) }

// Has reports whether the role grants p.
func (r Role) Has(p Permission) bool { return slices.Contains(rolePermissions[r], p) }

// Account is a tenant. ID is the {accountId} of the API paths.
type Account struct {
	ID        int64
	Name      string
	GlobalID  string // UUID, shown as account_id in licence rules
	AccessKey string // UUID, licence key of the Default allocation
	CreatedAt time.Time
}

// GlobalAccountName is the account's name as AppDynamics shows it.
func (a Account) GlobalAccountName() string { return a.Name + "_" + a.GlobalID }

// User is a person who logs in with basic auth.
type User struct {
	ID           int64
	AccountID    int64
	Name         string
	Role         Role
	PasswordHash string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// APIClient is an OAuth client-credentials client.
type APIClient struct {
	ID            int64
	AccountID     int64
	Name          string
	Description   string
	Role          Role
	SecretHash    string
	TokenLifetime time.Duration
	CreatedAt     time.Time
}

// PrincipalKind tells users from API clients.
type PrincipalKind string

// Principal kinds.
const (
	KindUser      PrincipalKind = "user"
	KindAPIClient PrincipalKind = "api-client"
)

// Principal is an authenticated caller.
type Principal struct {
	AccountID   int64
	AccountName string
	Kind        PrincipalKind
	Name        string
	Role        Role
}

// Can reports whether the principal holds permission p.
func (p Principal) Can(perm Permission) bool { return p.Role.Has(perm) }

// String names the principal as user@account, for logs and history.
func (p Principal) String() string { return p.Name + "@" + p.AccountName }

// Store is the persistence auth needs. Implementations return errors that
// wrap fault.ErrNotFound and fault.ErrConflict.
type Store interface {
	// InTx runs fn in one transaction.
	InTx(ctx context.Context, fn func(Store) error) error
	// AppendAudit records a write in the transaction (audit.Record).
	audit.Appender

	CreateAccount(ctx context.Context, a *Account) error
	FindAccountByID(ctx context.Context, id int64) (Account, error)
	FindAccountByName(ctx context.Context, name string) (Account, error)
	CountAccounts(ctx context.Context) (int64, error)
	// MaxAccountID returns the highest account id, 0 when there is none.
	MaxAccountID(ctx context.Context) (int64, error)

	CreateUser(ctx context.Context, u *User) error
	FindUser(ctx context.Context, accountID int64, name string) (User, error)
	FindUsers(ctx context.Context, accountID int64) ([]User, error)
	UpdateUser(ctx context.Context, u *User) error
	DeleteUser(ctx context.Context, accountID int64, name string) error

	CreateAPIClient(ctx context.Context, c *APIClient) error
	FindAPIClient(ctx context.Context, accountID int64, name string) (APIClient, error)
	FindAPIClientByID(ctx context.Context, id int64) (APIClient, error)
	FindAPIClients(ctx context.Context, accountID int64) ([]APIClient, error)
	DeleteAPIClient(ctx context.Context, accountID int64, name string) error

	// Secret returns the server secret called name, storing gen() first when
	// there is none yet (replicas then share it).
	Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error)

	// LoginFailures returns the failures counted for each of subjects in
	// windows that started after since, with the windows' starts.
	LoginFailures(ctx context.Context, subjects []string, since time.Time) ([]LoginFailure, error)
	// RecordLoginFailure adds a failure to each subject: to its window when
	// that started after since, else to a new window starting at now; it
	// returns the counts after the addition, atomically.
	RecordLoginFailure(ctx context.Context, subjects []string, now, since time.Time) ([]LoginFailure, error)
	// ClearLoginFailures forgets a subject's failures.
	ClearLoginFailures(ctx context.Context, subject string) error
	// PruneLoginFailures deletes windows that started before before.
	PruneLoginFailures(ctx context.Context, before time.Time) error
	// NotifyCredentialChange tells every replica, when the transaction
	// commits, to forget what it cached of a credential (payload: see
	// Service.Forget).
	NotifyCredentialChange(ctx context.Context, payload string) error
}

// LoginFailure is the failed logins of one subject in the current window.
type LoginFailure struct {
	Subject     string
	WindowStart time.Time
	Failures    int64
}
