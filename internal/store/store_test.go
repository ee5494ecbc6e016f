package store_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Both engines must share one migration history: same versions, same files.
func TestMigrationHistoriesMatch(t *testing.T) {
	list := func(dir string) []string {
		entries, err := fs.ReadDir(os.DirFS("migrations"), dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	if diff := cmp.Diff(list("postgres"), list("sqlite")); diff != "" {
		t.Errorf("migration files differ between engines (-postgres +sqlite):\n%s", diff)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		v1, err := s.Migrate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		v2, err := s.Migrate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v1 != v2 || v1 == 0 {
			t.Errorf("versions after two migrations: %d, %d", v1, v2)
		}
		if err := s.Ready(ctx); err != nil {
			t.Errorf("Ready after migrate: %v", err)
		}
	})
}

func TestAuthStoreContract(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		as := s.Auth()
		now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
		acc := auth.Account{ID: 7, Name: "acme", GlobalID: "g-7", AccessKey: "k-7", CreatedAt: now}
		if err := as.CreateAccount(ctx, &acc); err != nil {
			t.Fatal(err)
		}
		dup := acc
		dup.ID = 8
		if err := as.CreateAccount(ctx, &dup); !errors.Is(err, fault.ErrConflict) {
			t.Errorf("duplicate account name: got %v, want ErrConflict", err)
		}
		got, err := as.FindAccountByName(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, acc); diff != "" {
			t.Errorf("account round trip (-got +want):\n%s", diff)
		}
		if _, err := as.FindAccountByID(ctx, 99); !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("unknown account: got %v, want ErrNotFound", err)
		}
		if max, err := as.MaxAccountID(ctx); err != nil || max != 7 {
			t.Errorf("MaxAccountID = %d, %v; want 7", max, err)
		}

		u := auth.User{AccountID: 7, Name: "bob", Role: auth.RoleLicenseViewer, PasswordHash: "h", CreatedAt: now, UpdatedAt: now}
		if err := as.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		if u.ID == 0 {
			t.Error("CreateUser did not set the id")
		}
		u2 := u
		if err := as.CreateUser(ctx, &u2); !errors.Is(err, fault.ErrConflict) {
			t.Errorf("duplicate user: got %v, want ErrConflict", err)
		}
		u.Role = auth.RoleLicenseAdmin
		if err := as.UpdateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		gotU, err := as.FindUser(ctx, 7, "bob")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(gotU, u); diff != "" {
			t.Errorf("user round trip (-got +want):\n%s", diff)
		}
		if err := as.DeleteUser(ctx, 7, "bob"); err != nil {
			t.Fatal(err)
		}
		if err := as.DeleteUser(ctx, 7, "bob"); !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("second delete: got %v, want ErrNotFound", err)
		}

		c := auth.APIClient{AccountID: 7, Name: "ci", Role: auth.RoleAgentRegistrar, SecretHash: "s", TokenLifetime: 5 * time.Minute, CreatedAt: now}
		if err := as.CreateAPIClient(ctx, &c); err != nil {
			t.Fatal(err)
		}
		gotC, err := as.FindAPIClientByID(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(gotC, c); diff != "" {
			t.Errorf("client round trip (-got +want):\n%s", diff)
		}
	})
}

// A rolled-back transaction leaves nothing behind.
func TestInTxRollsBack(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		boom := errors.New("boom")
		err := s.Auth().InTx(ctx, func(tx auth.Store) error {
			if err := tx.CreateAccount(ctx, &auth.Account{ID: 1, Name: "a", GlobalID: "g", AccessKey: "k", CreatedAt: time.Now()}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx error = %v, want boom", err)
		}
		if n, err := s.Auth().CountAccounts(ctx); err != nil || n != 0 {
			t.Errorf("accounts after rollback = %d, %v; want 0", n, err)
		}
	})
}

// Replicas racing to create the shared token key all end up with one key.
func TestSecretIsSharedUnderRace(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const n = 8
		keys := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := s.Auth().Secret(ctx, "k", func() ([]byte, error) { return []byte{byte(i)}, nil })
				if err != nil {
					t.Error(err)
					return
				}
				keys[i] = string(v)
			}()
		}
		wg.Wait()
		for i := 1; i < n; i++ {
			if keys[i] != keys[0] {
				t.Fatalf("replicas got different secrets: %q", keys)
			}
		}
	})
}
