package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/fault"
)

type accountRow struct {
	ID        int64 `gorm:"primaryKey;autoIncrement:false"`
	Name      string
	GlobalID  string
	AccessKey string
	CreatedAt time.Time
	// Revision moves with every write of the account's licences,
	// allocations, rules and webhooks (licensingStore.LockAccount).
	Revision int64
}

func (accountRow) TableName() string { return "accounts" }

type userRow struct {
	ID           int64 `gorm:"primaryKey"`
	AccountID    int64
	Name         string
	Role         string
	PasswordHash string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

func (userRow) TableName() string { return "users" }

type apiClientRow struct {
	ID                   int64 `gorm:"primaryKey"`
	AccountID            int64
	Name                 string
	Description          string
	Role                 string
	SecretHash           string
	TokenLifetimeSeconds int64
	CreatedAt            time.Time
}

func (apiClientRow) TableName() string { return "api_clients" }

type secretRow struct {
	Name  string `gorm:"primaryKey"`
	Value []byte
}

func (secretRow) TableName() string { return "secrets" }

func accountFromRow(r accountRow) auth.Account {
	return auth.Account{ID: r.ID, Name: r.Name, GlobalID: r.GlobalID, AccessKey: r.AccessKey, CreatedAt: r.CreatedAt.UTC()}
}

func userFromRow(r userRow) auth.User {
	return auth.User{ID: r.ID, AccountID: r.AccountID, Name: r.Name, Role: auth.Role(r.Role),
		PasswordHash: r.PasswordHash, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

func userToRow(u auth.User) userRow {
	return userRow{ID: u.ID, AccountID: u.AccountID, Name: u.Name, Role: string(u.Role),
		PasswordHash: u.PasswordHash, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

func clientFromRow(r apiClientRow) auth.APIClient {
	return auth.APIClient{ID: r.ID, AccountID: r.AccountID, Name: r.Name, Description: r.Description,
		Role: auth.Role(r.Role), SecretHash: r.SecretHash,
		TokenLifetime: time.Duration(r.TokenLifetimeSeconds) * time.Second, CreatedAt: r.CreatedAt.UTC()}
}

// authStore adapts Store to auth.Store.
type authStore struct{ s *Store }

var _ auth.Store = authStore{}

// Auth returns the store of accounts, users and API clients.
func (s *Store) Auth() auth.Store { return authStore{s} }

func (a authStore) InTx(ctx context.Context, fn func(auth.Store) error) error {
	return a.s.InTx(ctx, func(tx *Store) error { return fn(authStore{tx}) })
}

func (a authStore) CreateAccount(ctx context.Context, acc *auth.Account) error {
	r := accountRow{ID: acc.ID, Name: acc.Name, GlobalID: acc.GlobalID, AccessKey: acc.AccessKey, CreatedAt: acc.CreatedAt}
	if err := a.s.conn(ctx).Create(&r).Error; err != nil {
		return fmt.Errorf("insert account %s: %w", acc.Name, translate(err))
	}
	return nil
}

func (a authStore) findAccount(ctx context.Context, what string, query string, arg any) (auth.Account, error) {
	var r accountRow
	if err := a.s.conn(ctx).Where(query, arg).Take(&r).Error; err != nil {
		return auth.Account{}, fmt.Errorf("find account %s: %w", what, translate(err))
	}
	return accountFromRow(r), nil
}

func (a authStore) FindAccountByID(ctx context.Context, id int64) (auth.Account, error) {
	return a.findAccount(ctx, fmt.Sprint(id), "id = ?", id)
}

func (a authStore) FindAccountByName(ctx context.Context, name string) (auth.Account, error) {
	return a.findAccount(ctx, name, "name = ?", name)
}

func (a authStore) CountAccounts(ctx context.Context) (int64, error) {
	var n int64
	if err := a.s.conn(ctx).Model(&accountRow{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count accounts: %w", translate(err))
	}
	return n, nil
}

func (a authStore) MaxAccountID(ctx context.Context) (int64, error) {
	var n *int64
	if err := a.s.conn(ctx).Model(&accountRow{}).Select("MAX(id)").Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("max account id: %w", translate(err))
	}
	if n == nil {
		return 0, nil
	}
	return *n, nil
}

func (a authStore) CreateUser(ctx context.Context, u *auth.User) error {
	r := userToRow(*u)
	if err := a.s.conn(ctx).Create(&r).Error; err != nil {
		return fmt.Errorf("insert user %s: %w", u.Name, translate(err))
	}
	u.ID = r.ID
	return nil
}

func (a authStore) FindUser(ctx context.Context, accountID int64, name string) (auth.User, error) {
	var r userRow
	if err := a.s.conn(ctx).Where("account_id = ? AND name = ?", accountID, name).Take(&r).Error; err != nil {
		return auth.User{}, fmt.Errorf("find user %s: %w", name, translate(err))
	}
	return userFromRow(r), nil
}

func (a authStore) FindUsers(ctx context.Context, accountID int64) ([]auth.User, error) {
	var rows []userRow
	if err := a.s.conn(ctx).Where("account_id = ?", accountID).Order("name").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("find users: %w", translate(err))
	}
	out := make([]auth.User, len(rows))
	for i, r := range rows {
		out[i] = userFromRow(r)
	}
	return out, nil
}

func (a authStore) UpdateUser(ctx context.Context, u *auth.User) error {
	r := userToRow(*u)
	res := a.s.conn(ctx).Model(&userRow{}).Where("account_id = ? AND id = ?", u.AccountID, u.ID).
		Updates(map[string]any{"role": r.Role, "password_hash": r.PasswordHash, "updated_at": r.UpdatedAt})
	return affectedOne(res, "update user "+u.Name)
}

func (a authStore) DeleteUser(ctx context.Context, accountID int64, name string) error {
	res := a.s.conn(ctx).Where("account_id = ? AND name = ?", accountID, name).Delete(&userRow{})
	return affectedOne(res, "delete user "+name)
}

// affectedOne turns "no row touched" into ErrNotFound.
// affectedRow is affectedOne for a statement run by rawExec.
func affectedRow(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, translate(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("%s: %w", what, translate(err))
	} else if n == 0 {
		return fmt.Errorf("%s: %w", what, fault.ErrNotFound)
	}
	return nil
}

func affectedOne(res *gorm.DB, what string) error {
	if res.Error != nil {
		return fmt.Errorf("%s: %w", what, translate(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%s: %w", what, fault.ErrNotFound)
	}
	return nil
}

func (a authStore) CreateAPIClient(ctx context.Context, c *auth.APIClient) error {
	r := apiClientRow{AccountID: c.AccountID, Name: c.Name, Description: c.Description, Role: string(c.Role),
		SecretHash: c.SecretHash, TokenLifetimeSeconds: int64(c.TokenLifetime / time.Second), CreatedAt: c.CreatedAt}
	if err := a.s.conn(ctx).Create(&r).Error; err != nil {
		return fmt.Errorf("insert API client %s: %w", c.Name, translate(err))
	}
	c.ID = r.ID
	return nil
}

func (a authStore) FindAPIClient(ctx context.Context, accountID int64, name string) (auth.APIClient, error) {
	var r apiClientRow
	if err := a.s.conn(ctx).Where("account_id = ? AND name = ?", accountID, name).Take(&r).Error; err != nil {
		return auth.APIClient{}, fmt.Errorf("find API client %s: %w", name, translate(err))
	}
	return clientFromRow(r), nil
}

func (a authStore) FindAPIClientByID(ctx context.Context, id int64) (auth.APIClient, error) {
	var r apiClientRow
	if err := a.s.conn(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return auth.APIClient{}, fmt.Errorf("find API client %d: %w", id, translate(err))
	}
	return clientFromRow(r), nil
}

func (a authStore) FindAPIClients(ctx context.Context, accountID int64) ([]auth.APIClient, error) {
	var rows []apiClientRow
	if err := a.s.conn(ctx).Where("account_id = ?", accountID).Order("name").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("find API clients: %w", translate(err))
	}
	out := make([]auth.APIClient, len(rows))
	for i, r := range rows {
		out[i] = clientFromRow(r)
	}
	return out, nil
}

func (a authStore) DeleteAPIClient(ctx context.Context, accountID int64, name string) error {
	res := a.s.conn(ctx).Where("account_id = ? AND name = ?", accountID, name).Delete(&apiClientRow{})
	return affectedOne(res, "delete API client "+name)
}

func (a authStore) Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	var r secretRow
	err := a.s.conn(ctx).Where("name = ?", name).Take(&r).Error
	if err == nil {
		return r.Value, nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("load secret %s: %w", name, translate(err))
	}
	v, err := gen()
	if err != nil {
		return nil, fmt.Errorf("generate secret %s: %w", name, err)
	}
	// Another replica may store its own first; everyone then reads the winner.
	if err := a.s.conn(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&secretRow{Name: name, Value: v}).Error; err != nil {
		return nil, fmt.Errorf("store secret %s: %w", name, translate(err))
	}
	if err := a.s.conn(ctx).Where("name = ?", name).Take(&r).Error; err != nil {
		return nil, fmt.Errorf("load secret %s: %w", name, translate(err))
	}
	return r.Value, nil
}

type loginFailureRow struct {
	Subject     string
	WindowStart int64
	Failures    int64
}

func (a authStore) LoginFailures(ctx context.Context, subjects []string, since time.Time) ([]auth.LoginFailure, error) {
	var rows []loginFailureRow
	err := a.s.conn(ctx).Raw("SELECT subject, window_start, failures FROM login_failures WHERE subject IN ? AND window_start > ?",
		subjects, since.Unix()).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("failed logins: %w", translate(err))
	}
	out := make([]auth.LoginFailure, len(rows))
	for i, r := range rows {
		out[i] = auth.LoginFailure{Subject: r.Subject, WindowStart: time.Unix(r.WindowStart, 0).UTC(), Failures: r.Failures}
	}
	return out, nil
}

// RecordLoginFailure is one upsert: concurrent failures on any replica add
// up exactly, and a window that has passed starts again.
func (a authStore) RecordLoginFailure(ctx context.Context, subjects []string, now, since time.Time) ([]auth.LoginFailure, error) {
	if len(subjects) == 0 {
		return nil, nil
	}
	values := strings.TrimSuffix(strings.Repeat("(?, ?, 1),", len(subjects)), ",")
	args := make([]any, 0, 2*len(subjects)+2)
	for _, s := range subjects {
		args = append(args, s, now.Unix())
	}
	args = append(args, since.Unix(), since.Unix())
	var rows []loginFailureRow
	err := a.s.conn(ctx).Raw(`INSERT INTO login_failures (subject, window_start, failures) VALUES `+values+`
		ON CONFLICT (subject) DO UPDATE SET
		failures = CASE WHEN login_failures.window_start <= ? THEN 1 ELSE login_failures.failures + 1 END,
		window_start = CASE WHEN login_failures.window_start <= ? THEN excluded.window_start ELSE login_failures.window_start END
		RETURNING subject, window_start, failures`, args...).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("record failed login: %w", translate(err))
	}
	out := make([]auth.LoginFailure, len(rows))
	for i, r := range rows {
		out[i] = auth.LoginFailure{Subject: r.Subject, WindowStart: time.Unix(r.WindowStart, 0).UTC(), Failures: r.Failures}
	}
	return out, nil
}

func (a authStore) ClearLoginFailures(ctx context.Context, subject string) error {
	if err := a.s.conn(ctx).Exec("DELETE FROM login_failures WHERE subject = ?", subject).Error; err != nil {
		return fmt.Errorf("clear failed logins: %w", translate(err))
	}
	return nil
}

func (a authStore) PruneLoginFailures(ctx context.Context, before time.Time) error {
	if err := a.s.conn(ctx).Exec("DELETE FROM login_failures WHERE window_start <= ?", before.Unix()).Error; err != nil {
		return fmt.Errorf("prune failed logins: %w", translate(err))
	}
	return nil
}

// CredentialChannel is the PostgreSQL notification channel of credential
// changes.
const CredentialChannel = "lc_credentials"

// NotifyCredentialChange is a pg_notify in the caller's transaction:
// PostgreSQL delivers it to every listening replica when it commits. On
// the embedded store it is a row of credential_changes, which the serving
// process polls (the CLI is another process on the same file).
func (a authStore) NotifyCredentialChange(ctx context.Context, payload string) error {
	if a.s.dialect != Postgres {
		err := a.s.conn(ctx).Exec("INSERT INTO credential_changes (payload, at) VALUES (?, ?)", payload, time.Now().Unix()).Error
		if err != nil {
			return fmt.Errorf("record credential change: %w", translate(err))
		}
		return nil
	}
	if err := a.s.conn(ctx).Exec("SELECT pg_notify(?, ?)", CredentialChannel, payload).Error; err != nil {
		return fmt.Errorf("notify credential change: %w", translate(err))
	}
	return nil
}
