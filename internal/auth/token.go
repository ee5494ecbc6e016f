package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/lcorp/licensing-controller/internal/fault"
)

// Token is an issued OAuth access token.
type Token struct {
	AccessToken string
	ExpiresIn   time.Duration
}

type tokenClaims struct {
	jwt.RegisteredClaims
	AccountID int64 `json:"acc"`
	ClientID  int64 `json:"cid"`
}

var errInvalidClient = fault.New(fault.ErrUnauthenticated, "INVALID_CLIENT", "invalid client credentials")

// IssueToken implements the client-credentials grant: clientID is
// "<clientName>@<accountName>". Errors: ErrUnauthenticated (INVALID_CLIENT),
// ErrThrottled.
func (s *Service) IssueToken(ctx context.Context, clientID, secret, remoteAddr string) (Token, error) {
	name, accountName := splitLogin(clientID, s.opt.DefaultAccount)
	who := "client:" + accountName + "/" + name
	defer s.locks.lock(who, remoteAddr)()
	failed, err := s.throttle.check(ctx, who, remoteAddr)
	if err != nil {
		return Token{}, err
	}
	var (
		a Account
		c APIClient
	)
	a, err = s.store.FindAccountByName(ctx, accountName)
	if err == nil {
		c, err = s.store.FindAPIClient(ctx, a.ID, name)
	}
	if err == nil && bcrypt.CompareHashAndPassword([]byte(c.SecretHash), []byte(secret)) != nil {
		err = errInvalidClient
	} else if errors.Is(err, fault.ErrNotFound) {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(secret)) // as slow as a known client
	}
	if errors.Is(err, fault.ErrNotFound) || errors.Is(err, fault.ErrUnauthenticated) {
		if ferr := s.throttle.fail(ctx, who, remoteAddr); ferr != nil {
			return Token{}, ferr
		}
		return Token{}, errInvalidClient
	}
	if err != nil {
		return Token{}, fmt.Errorf("issue token: %w", err)
	}
	if failed {
		if err := s.throttle.reset(ctx, who, remoteAddr); err != nil {
			return Token{}, err
		}
	}
	now := s.opt.Now()
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.Name,
			Issuer:    "licensing-controller",
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(c.TokenLifetime)),
			ID:        uuid.NewString(),
		},
		AccountID: a.ID,
		ClientID:  c.ID,
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.tokenKey)
	if err != nil {
		return Token{}, fmt.Errorf("sign token: %w", err)
	}
	s.clients.Add(c.ID, clientPrincipal(a, c))
	return Token{AccessToken: signed, ExpiresIn: c.TokenLifetime}, nil
}

var errBadToken = fault.New(fault.ErrUnauthenticated, "INVALID_TOKEN", "invalid or expired bearer token")

// VerifyToken checks a bearer token: its signature and expiry, and that its
// client still exists (from a short-lived cache, so the hot path does not
// touch the database). A token's signature is verified once: its claims
// are kept, and a later call checks their times only. Errors:
// ErrUnauthenticated.
func (s *Service) VerifyToken(ctx context.Context, raw string) (Principal, error) {
	key := sha256.Sum256([]byte(raw))
	claims, ok := s.tokens.Get(key)
	if ok && !timely(claims, s.opt.Now()) {
		s.tokens.Remove(key)
		return Principal{}, errBadToken
	}
	if !ok {
		_, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return s.tokenKey, nil },
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithIssuer("licensing-controller"),
			jwt.WithExpirationRequired(),
			jwt.WithTimeFunc(s.opt.Now))
		if err != nil {
			return Principal{}, errBadToken
		}
		s.tokens.Add(key, claims)
	}
	p, ok := s.clients.Get(claims.ClientID)
	if !ok {
		c, err := s.store.FindAPIClientByID(ctx, claims.ClientID)
		var a Account
		if err == nil {
			a, err = s.store.FindAccountByID(ctx, c.AccountID)
		}
		if errors.Is(err, fault.ErrNotFound) {
			return Principal{}, errBadToken
		}
		if err != nil {
			return Principal{}, fmt.Errorf("verify token of client %s: %w", strconv.FormatInt(claims.ClientID, 10), err)
		}
		p = clientPrincipal(a, c)
		s.clients.Add(c.ID, p)
	}
	if p.AccountID != claims.AccountID || p.Name != claims.Subject {
		return Principal{}, errBadToken
	}
	return p, nil
}

// timely repeats the time checks of jwt's validator for verified claims:
// now before the expiry (required), not before the not-before time.
func timely(c tokenClaims, now time.Time) bool {
	if c.ExpiresAt == nil || !now.Before(c.ExpiresAt.Time) {
		return false
	}
	return c.NotBefore == nil || !now.Before(c.NotBefore.Time)
}

func clientPrincipal(a Account, c APIClient) Principal {
	return Principal{AccountID: a.ID, AccountName: a.Name, Kind: KindAPIClient, Name: c.Name, Role: c.Role}
}
