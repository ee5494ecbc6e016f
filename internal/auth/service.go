package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/crypto/bcrypt"

	"github.com/lcorp/licensing-controller/internal/audit"
	"github.com/lcorp/licensing-controller/internal/fault"
)

// Options tune a Service. Zero values select the defaults.
type Options struct {
	// DefaultAccount is the account of basic-auth logins without "@account".
	DefaultAccount string
	// BcryptCost is the cost of new password and secret hashes.
	BcryptCost int
	// CredentialCacheTTL bounds how long a verified basic-auth credential is
	// trusted without a new hash check (and how long another replica may
	// accept a password that was just changed).
	CredentialCacheTTL time.Duration
	// MaxFailures is the number of failed logins per user (or client) within
	// FailureWindow after which further attempts get 429.
	MaxFailures int
	// MaxFailuresPerAddress is the same limit per remote address.
	MaxFailuresPerAddress int
	FailureWindow         time.Duration
	// Now is the clock; tests inject one.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.DefaultAccount == "" {
		o.DefaultAccount = "customer1"
	}
	if o.BcryptCost == 0 {
		o.BcryptCost = bcrypt.DefaultCost
	}
	if o.CredentialCacheTTL == 0 {
		o.CredentialCacheTTL = time.Minute
	}
	if o.MaxFailures == 0 {
		o.MaxFailures = 10
	}
	if o.MaxFailuresPerAddress == 0 {
		o.MaxFailuresPerAddress = 100
	}
	if o.FailureWindow == 0 {
		o.FailureWindow = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Service authenticates callers and manages accounts, users and API clients.
type Service struct {
	store    Store
	opt      Options
	cacheKey []byte // per-process HMAC key of the credential cache
	tokenKey []byte // shared by replicas, from the store
	creds    *expirable.LRU[string, Principal]
	clients  *expirable.LRU[int64, Principal] // by client id, for bearer checks
	// tokens are the claims of bearer tokens verified already, by the
	// token's SHA-256: a token's signature is checked once, not per call.
	tokens   *expirable.LRU[[sha256.Size]byte, tokenClaims]
	accounts *expirable.LRU[int64, Account] // accounts are never renamed or removed
	throttle *throttle
	locks    *shardLocks
	// dummyHash is compared against when a user or client does not exist,
	// so that an unknown name costs the time of a wrong password.
	dummyHash []byte
}

// NewService loads (or creates) the token signing key and returns a Service.
func NewService(ctx context.Context, store Store, opt Options) (*Service, error) {
	opt = opt.withDefaults()
	cacheKey := make([]byte, 32)
	if _, err := rand.Read(cacheKey); err != nil {
		return nil, fmt.Errorf("credential cache key: %w", err)
	}
	tokenKey, err := store.Secret(ctx, "oauth-token-hs256", func() ([]byte, error) {
		k := make([]byte, 32)
		_, err := rand.Read(k)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("load token signing key: %w", err)
	}
	dummy, err := bcrypt.GenerateFromPassword(cacheKey, opt.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("dummy password hash: %w", err)
	}
	return &Service{
		store:    store,
		opt:      opt,
		cacheKey: cacheKey,
		tokenKey: tokenKey,
		creds:    expirable.NewLRU[string, Principal](10_000, nil, opt.CredentialCacheTTL),
		clients:  expirable.NewLRU[int64, Principal](10_000, nil, 10*time.Second),
		tokens:   expirable.NewLRU[[sha256.Size]byte, tokenClaims](10_000, nil, 10*time.Minute),
		accounts: expirable.NewLRU[int64, Account](10_000, nil, time.Minute),
		throttle: &throttle{store: store, window: opt.FailureWindow, now: opt.Now,
			maxPrincipal: opt.MaxFailures, maxAddress: opt.MaxFailuresPerAddress},
		locks:     &shardLocks{},
		dummyHash: dummy,
	}, nil
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func checkName(field, name string) error {
	if !namePattern.MatchString(name) {
		return fault.Invalid(field, "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

// checkClientName allows what real AppDynamics configurations use for API
// client names ("License Dashboard Client Key"): 1-255 printable
// characters but '@' (it separates the account in client ids) and '/'
// (names are path segments), not starting or ending with a space.
func checkClientName(name string) error {
	const msg = "must be 1-255 printable characters without '@' or '/', not starting or ending with a space"
	if n := utf8.RuneCountInString(name); n < 1 || n > 255 || strings.TrimSpace(name) != name {
		return fault.Invalid("name", msg)
	}
	for _, r := range name {
		if r == '@' || r == '/' || !unicode.IsPrint(r) {
			return fault.Invalid("name", msg)
		}
	}
	return nil
}

func checkRole(r Role) error {
	if !r.Valid() {
		return fault.Invalid("role", fmt.Sprintf("must be one of %s", joinRoles()))
	}
	return nil
}

func joinRoles() string {
	names := make([]string, 0, 4)
	for _, r := range Roles() {
		names = append(names, string(r))
	}
	return strings.Join(names, ", ")
}

// CheckPassword enforces the minimum password policy.
func CheckPassword(pw string) error {
	if len(pw) < 8 {
		return fault.Invalid("password", "must be at least 8 characters")
	}
	if len(pw) > 72 {
		return fault.Invalid("password", "must be at most 72 bytes")
	}
	return nil
}

// CreateAccount creates an account with the given id (0 = next free id).
// Errors: ErrInvalid, ErrConflict (name or id taken).
func (s *Service) CreateAccount(ctx context.Context, name string, id int64) (Account, error) {
	if err := checkName("name", name); err != nil {
		return Account{}, err
	}
	if id < 0 {
		return Account{}, fault.Invalid("id", "must be positive")
	}
	a := Account{ID: id, Name: name, GlobalID: uuid.NewString(), AccessKey: uuid.NewString(), CreatedAt: s.opt.Now().UTC()}
	err := s.store.InTx(ctx, func(tx Store) error {
		if a.ID == 0 {
			max, err := tx.MaxAccountID(ctx)
			if err != nil {
				return err
			}
			a.ID = max + 1
		}
		return tx.CreateAccount(ctx, &a)
	})
	if errors.Is(err, fault.ErrConflict) {
		if id != 0 {
			return Account{}, fault.New(fault.ErrConflict, "ACCOUNT_EXISTS", "an account with name %q or id %d exists", name, id)
		}
		return Account{}, fault.New(fault.ErrConflict, "ACCOUNT_EXISTS", "an account named %q exists", name)
	}
	if err != nil {
		return Account{}, fmt.Errorf("create account %s: %w", name, err)
	}
	return a, nil
}

// Bootstrap creates account customer1 (id 1) and its admin user on an empty
// database. It returns created=false when any account exists. An empty
// password is replaced by a random one, returned so it can be shown once.
func (s *Service) Bootstrap(ctx context.Context, password string) (created bool, pw string, err error) {
	if password == "" {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return false, "", fmt.Errorf("generate admin password: %w", err)
		}
		password = base64.RawURLEncoding.EncodeToString(b)
	}
	if err := CheckPassword(password); err != nil {
		return false, "", fmt.Errorf("LC_BOOTSTRAP_ADMIN_PASSWORD: %w", err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.opt.BcryptCost)
	if err != nil {
		return false, "", fmt.Errorf("hash admin password: %w", err)
	}
	now := s.opt.Now().UTC()
	err = s.store.InTx(ctx, func(tx Store) error {
		n, err := tx.CountAccounts(ctx)
		if err != nil || n > 0 {
			return err
		}
		a := Account{ID: 1, Name: s.opt.DefaultAccount, GlobalID: uuid.NewString(), AccessKey: uuid.NewString(), CreatedAt: now}
		if err := tx.CreateAccount(ctx, &a); err != nil {
			return err
		}
		created = true
		u := User{AccountID: 1, Name: "admin", Role: RoleAccountOwner, PasswordHash: string(hash), CreatedAt: now, UpdatedAt: now}
		if err := tx.CreateUser(ctx, &u); err != nil {
			return err
		}
		return audit.Record(ctx, tx, 1, now, audit.Create, userResource(u), nil, userAudit(u, false))
	})
	if errors.Is(err, fault.ErrConflict) {
		// Another replica bootstrapped at the same moment.
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("bootstrap: %w", err)
	}
	return created, password, nil
}

// Account returns the account with the given id, from a short-lived cache
// when it can (accounts do not change once created). Errors: ErrNotFound.
func (s *Service) Account(ctx context.Context, id int64) (Account, error) {
	if a, ok := s.accounts.Get(id); ok {
		return a, nil
	}
	a, err := s.store.FindAccountByID(ctx, id)
	if err != nil {
		return Account{}, fmt.Errorf("load account %d: %w", id, err)
	}
	s.accounts.Add(id, a)
	return a, nil
}

// AccountByName returns the named account. Errors: ErrNotFound.
func (s *Service) AccountByName(ctx context.Context, name string) (Account, error) {
	a, err := s.store.FindAccountByName(ctx, name)
	if err != nil {
		return Account{}, fmt.Errorf("load account %q: %w", name, err)
	}
	return a, nil
}

// CreateUser adds a user. Errors: ErrInvalid, ErrConflict (USER_EXISTS).
func (s *Service) CreateUser(ctx context.Context, accountID int64, name string, role Role, password string) (User, error) {
	if err := checkName("name", name); err != nil {
		return User{}, err
	}
	if err := checkRole(role); err != nil {
		return User{}, err
	}
	if err := CheckPassword(password); err != nil {
		return User{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.opt.BcryptCost)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	now := s.opt.Now().UTC()
	u := User{AccountID: accountID, Name: name, Role: role, PasswordHash: string(hash), CreatedAt: now, UpdatedAt: now}
	err = s.store.InTx(ctx, func(tx Store) error {
		if err := tx.CreateUser(ctx, &u); err != nil {
			return err
		}
		return audit.Record(ctx, tx, accountID, now, audit.Create, userResource(u), nil, userAudit(u, false))
	})
	if err != nil {
		if errors.Is(err, fault.ErrConflict) {
			return User{}, fault.New(fault.ErrConflict, "USER_EXISTS", "user %q exists", name)
		}
		return User{}, fmt.Errorf("create user %s: %w", name, err)
	}
	return u, nil
}

// UpdateUser changes a user's role and/or password (empty = unchanged) and
// forgets every cached credential. Errors: ErrInvalid, ErrNotFound.
func (s *Service) UpdateUser(ctx context.Context, accountID int64, name string, role Role, password string) (User, error) {
	if role != "" {
		if err := checkRole(role); err != nil {
			return User{}, err
		}
	}
	var hash []byte
	if password != "" {
		if err := CheckPassword(password); err != nil {
			return User{}, err
		}
		var err error
		if hash, err = bcrypt.GenerateFromPassword([]byte(password), s.opt.BcryptCost); err != nil {
			return User{}, fmt.Errorf("hash password: %w", err)
		}
	}
	var u User
	err := s.store.InTx(ctx, func(tx Store) error {
		var err error
		if u, err = tx.FindUser(ctx, accountID, name); err != nil {
			return userNotFound(name, err)
		}
		before := u
		if role != "" {
			u.Role = role
		}
		if hash != nil {
			u.PasswordHash = string(hash)
		}
		u.UpdatedAt = s.opt.Now().UTC()
		if err := tx.UpdateUser(ctx, &u); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, accountID, u.UpdatedAt, audit.Update, userResource(u), userAudit(before, false), userAudit(u, hash != nil)); err != nil {
			return err
		}
		return tx.NotifyCredentialChange(ctx, userPayload(accountID, name))
	})
	if err != nil {
		return User{}, fmt.Errorf("update user %s: %w", name, err)
	}
	s.Forget(userPayload(accountID, name))
	return u, nil
}

func userNotFound(name string, err error) error {
	if errors.Is(err, fault.ErrNotFound) {
		return fault.New(fault.ErrNotFound, "USER_NOT_FOUND", "user %q not found", name)
	}
	return err
}

// Users lists the account's users.
func (s *Service) Users(ctx context.Context, accountID int64) ([]User, error) {
	us, err := s.store.FindUsers(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("list users of account %d: %w", accountID, err)
	}
	return us, nil
}

// DeleteUser removes a user and forgets cached credentials. Errors: ErrNotFound.
func (s *Service) DeleteUser(ctx context.Context, accountID int64, name string) error {
	err := s.store.InTx(ctx, func(tx Store) error {
		u, err := tx.FindUser(ctx, accountID, name)
		if err != nil {
			return userNotFound(name, err)
		}
		if err := tx.DeleteUser(ctx, accountID, name); err != nil {
			return userNotFound(name, err)
		}
		if err := audit.Record(ctx, tx, accountID, s.opt.Now(), audit.Delete, userResource(u), userAudit(u, false), nil); err != nil {
			return err
		}
		return tx.NotifyCredentialChange(ctx, userPayload(accountID, name))
	})
	if err != nil {
		return fmt.Errorf("delete user %s: %w", name, err)
	}
	s.Forget(userPayload(accountID, name))
	return nil
}

func userPayload(accountID int64, name string) string {
	return "user:" + strconv.FormatInt(accountID, 10) + "/" + name
}

func clientPayload(id int64) string { return "client:" + strconv.FormatInt(id, 10) }

// Forget drops what this replica cached of a changed credential: payload
// "user:<accountId>/<name>" (its verified passwords), "client:<id>" (the
// client behind its tokens) or "*" (everything, when notifications may have
// been missed). Every replica calls it on a change's notification.
func (s *Service) Forget(payload string) {
	switch {
	case payload == "*":
		s.creds.Purge()
		s.clients.Purge()
	case strings.HasPrefix(payload, "client:"):
		if id, err := strconv.ParseInt(strings.TrimPrefix(payload, "client:"), 10, 64); err == nil {
			s.clients.Remove(id)
		}
	case strings.HasPrefix(payload, "user:"):
		for _, k := range s.creds.Keys() {
			if p, ok := s.creds.Peek(k); ok && p.Kind == KindUser && userPayload(p.AccountID, p.Name) == payload {
				s.creds.Remove(k)
			}
		}
	}
}

// MaxTokenLifetime is the longest token lifetime a client may have.
const MaxTokenLifetime = 30 * 24 * time.Hour

// CreateAPIClient adds an API client and returns it with its secret, which
// is stored only as a hash. Errors: ErrInvalid, ErrConflict (CLIENT_EXISTS).
func (s *Service) CreateAPIClient(ctx context.Context, accountID int64, name, description string, role Role, lifetime time.Duration) (APIClient, string, error) {
	if err := checkClientName(name); err != nil {
		return APIClient{}, "", err
	}
	if err := checkRole(role); err != nil {
		return APIClient{}, "", err
	}
	if lifetime == 0 {
		lifetime = 300 * time.Second
	}
	if lifetime < time.Second || lifetime > MaxTokenLifetime {
		return APIClient{}, "", fault.Invalid("tokenLifetimeSeconds", "must be between 1 and 2592000")
	}
	secret, hash, err := s.newSecret()
	if err != nil {
		return APIClient{}, "", err
	}
	c := APIClient{AccountID: accountID, Name: name, Description: description, Role: role,
		SecretHash: hash, TokenLifetime: lifetime, CreatedAt: s.opt.Now().UTC()}
	err = s.store.InTx(ctx, func(tx Store) error {
		if err := tx.CreateAPIClient(ctx, &c); err != nil {
			return err
		}
		return audit.Record(ctx, tx, accountID, c.CreatedAt, audit.Create, clientResource(c), nil, clientAudit(c, false))
	})
	if err != nil {
		if errors.Is(err, fault.ErrConflict) {
			return APIClient{}, "", fault.New(fault.ErrConflict, "CLIENT_EXISTS", "API client %q exists", name)
		}
		return APIClient{}, "", fmt.Errorf("create API client %s: %w", name, err)
	}
	return c, secret, nil
}

// RotateAPIClient gives a client a new secret and returns it. The old
// secret and every token issued before stop working: the client is stored
// afresh under a new id, which tokens carry. Errors: ErrNotFound.
func (s *Service) RotateAPIClient(ctx context.Context, accountID int64, name string) (APIClient, string, error) {
	secret, hash, err := s.newSecret()
	if err != nil {
		return APIClient{}, "", err
	}
	var old, c APIClient
	err = s.store.InTx(ctx, func(tx Store) error {
		var err error
		if old, err = tx.FindAPIClient(ctx, accountID, name); err != nil {
			return err
		}
		if err := tx.DeleteAPIClient(ctx, accountID, name); err != nil {
			return err
		}
		c = old
		c.ID, c.SecretHash = 0, hash
		if err := tx.CreateAPIClient(ctx, &c); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, accountID, s.opt.Now(), audit.Update, clientResource(c), clientAudit(old, false), clientAudit(c, true)); err != nil {
			return err
		}
		return tx.NotifyCredentialChange(ctx, clientPayload(old.ID))
	})
	if errors.Is(err, fault.ErrNotFound) {
		return APIClient{}, "", fault.New(fault.ErrNotFound, "CLIENT_NOT_FOUND", "API client %q not found", name)
	}
	if err != nil {
		return APIClient{}, "", fmt.Errorf("rotate API client %s: %w", name, err)
	}
	s.Forget(clientPayload(old.ID))
	return c, secret, nil
}

// newSecret makes a client secret and its hash.
func (s *Service) newSecret() (secret, hash string, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("generate client secret: %w", err)
	}
	secret = base64.RawURLEncoding.EncodeToString(raw)
	h, err := bcrypt.GenerateFromPassword([]byte(secret), s.opt.BcryptCost)
	if err != nil {
		return "", "", fmt.Errorf("hash client secret: %w", err)
	}
	return secret, string(h), nil
}

// APIClients lists the account's API clients.
func (s *Service) APIClients(ctx context.Context, accountID int64) ([]APIClient, error) {
	cs, err := s.store.FindAPIClients(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("list API clients of account %d: %w", accountID, err)
	}
	return cs, nil
}

// DeleteAPIClient removes a client; its tokens stop working (at once on this
// replica, within the client cache TTL on others). Errors: ErrNotFound.
func (s *Service) DeleteAPIClient(ctx context.Context, accountID int64, name string) error {
	var c APIClient
	err := s.store.InTx(ctx, func(tx Store) error {
		var err error
		if c, err = tx.FindAPIClient(ctx, accountID, name); err != nil {
			return err
		}
		if err := tx.DeleteAPIClient(ctx, accountID, name); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, accountID, s.opt.Now(), audit.Delete, clientResource(c), clientAudit(c, false), nil); err != nil {
			return err
		}
		return tx.NotifyCredentialChange(ctx, clientPayload(c.ID))
	})
	if errors.Is(err, fault.ErrNotFound) {
		return fault.New(fault.ErrNotFound, "CLIENT_NOT_FOUND", "API client %q not found", name)
	}
	if err != nil {
		return fmt.Errorf("delete API client %s: %w", name, err)
	}
	s.Forget(clientPayload(c.ID))
	return nil
}

// splitLogin splits "user@account"; the account defaults to def.
func splitLogin(login, def string) (user, account string) {
	if i := strings.LastIndexByte(login, '@'); i >= 0 {
		return login[:i], login[i+1:]
	}
	return login, def
}

// credentialKey is a keyed hash of the credentials: the cache never holds
// passwords, and its keys are useless outside this process.
func (s *Service) credentialKey(parts ...string) string {
	m := hmac.New(sha256.New, s.cacheKey)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

var errBadCredentials = fault.New(fault.ErrUnauthenticated, "INVALID_CREDENTIALS", "invalid user name or password")

// RejectMalformed counts a credential that is malformed (NUL bytes,
// invalid UTF-8) as a failed login from remoteAddr and returns bad, or
// ErrThrottled when the address is over its limit already.
func (s *Service) RejectMalformed(ctx context.Context, remoteAddr string, bad error) error {
	if _, err := s.throttle.check(ctx, "", remoteAddr); err != nil {
		return err
	}
	if err := s.throttle.fail(ctx, "", remoteAddr); err != nil {
		return err
	}
	return bad
}

// AuthenticateBasic checks user@account:password. Errors: ErrUnauthenticated,
// ErrThrottled (too many failures for this user or address).
func (s *Service) AuthenticateBasic(ctx context.Context, login, password, remoteAddr string) (Principal, error) {
	key := s.credentialKey("basic", login, password)
	if p, ok := s.creds.Get(key); ok {
		return p, nil
	}
	userName, accountName := splitLogin(login, s.opt.DefaultAccount)
	who := "user:" + accountName + "/" + userName
	defer s.locks.lock(who, remoteAddr)()
	if p, ok := s.creds.Get(key); ok { // verified while this one waited
		return p, nil
	}
	failed, err := s.throttle.check(ctx, who, remoteAddr)
	if err != nil {
		return Principal{}, err
	}
	p, err := s.verifyPassword(ctx, userName, accountName, password)
	if errors.Is(err, fault.ErrUnauthenticated) {
		if ferr := s.throttle.fail(ctx, who, remoteAddr); ferr != nil {
			return Principal{}, ferr
		}
		return Principal{}, err
	}
	if err != nil {
		return Principal{}, err
	}
	if failed {
		if err := s.throttle.reset(ctx, who, remoteAddr); err != nil {
			return Principal{}, err
		}
	}
	s.creds.Add(key, p)
	return p, nil
}

func (s *Service) verifyPassword(ctx context.Context, userName, accountName, password string) (Principal, error) {
	a, err := s.store.FindAccountByName(ctx, accountName)
	if errors.Is(err, fault.ErrNotFound) {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password)) // as slow as a known user
		return Principal{}, errBadCredentials
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	u, err := s.store.FindUser(ctx, a.ID, userName)
	if errors.Is(err, fault.ErrNotFound) {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		return Principal{}, errBadCredentials
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return Principal{}, errBadCredentials
	}
	return Principal{AccountID: a.ID, AccountName: a.Name, Kind: KindUser, Name: u.Name, Role: u.Role}, nil
}

// The audit trail's snapshots of users and API clients: never a password,
// secret or hash; only that one changed.

func userResource(u User) audit.Resource {
	return audit.Resource{Type: audit.TypeUser, ID: u.Name, Name: u.Name}
}

func userAudit(u User, passwordChanged bool) any {
	return struct {
		Name            string `json:"name"`
		Role            Role   `json:"role"`
		PasswordChanged bool   `json:"passwordChanged,omitempty"`
	}{u.Name, u.Role, passwordChanged}
}

func clientResource(c APIClient) audit.Resource {
	return audit.Resource{Type: audit.TypeAPIClient, ID: c.Name, Name: c.Name}
}

func clientAudit(c APIClient, secretRotated bool) any {
	return struct {
		Name                 string `json:"name"`
		Description          string `json:"description"`
		Role                 Role   `json:"role"`
		TokenLifetimeSeconds int64  `json:"tokenLifetimeSeconds"`
		SecretRotated        bool   `json:"secretRotated,omitempty"`
	}{c.Name, c.Description, c.Role, int64(c.TokenLifetime / time.Second), secretRotated}
}
