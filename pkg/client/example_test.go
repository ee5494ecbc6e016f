package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/lcorp/licensing-controller/internal/apitest"
	"github.com/lcorp/licensing-controller/pkg/client"
)

// serve starts a service on a fresh embedded store for an example.
func serve() (baseURL string, stop func()) {
	dir, err := os.MkdirTemp("", "lc-example-")
	if err != nil {
		log.Fatal(err)
	}
	srv, closeSrv, err := apitest.StartSQLite(context.Background(), dir)
	if err != nil {
		log.Fatal(err)
	}
	return srv.URL, func() { closeSrv(); _ = os.RemoveAll(dir) }
}

// A monitoring controller shares the licence between teams with an
// allocation, registers its agents, and learns that a pool is full from a
// typed error that explains the decision.
func Example() {
	base, stop := serve()
	defer stop()
	ctx := context.Background()

	c, err := client.New(client.Options{BaseURL: base, AccountID: 1, User: "admin@customer1", Password: apitest.AdminPassword})
	if err != nil {
		log.Fatal(err)
	}
	team, err := c.CreateAllocation(ctx, client.AllocationInput{Name: "team-a",
		Limits: []client.Limit{{Package: client.PackagePremium, Units: 16}}})
	if err != nil {
		log.Fatal(err)
	}
	vcpu := int64(16)
	for _, host := range []string{"host-1", "host-2"} {
		d, err := c.Register(ctx, client.Registration{AgentID: host + "/java", AgentType: "APP_AGENT",
			LicenseKey: team.LicenseKey, Host: client.Host{ID: host, VCPU: &vcpu}})
		var e *client.Error
		switch {
		case client.IsNoMoreUnits(err) && errors.As(err, &e):
			fmt.Printf("%s refused: %s (limit %d)\n", host, e.Code, e.Decision.Explanation.Limit)
		case err != nil:
			log.Fatal(err)
		default:
			fmt.Printf("%s licensed: %d %s units\n", host, d.UnitsCharged, d.Package)
		}
	}
	usage, err := c.UsageByHosts(ctx, []string{"host-1", "host-2"}, false)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("vCPUs in use:", usage.VCPUTotal)
	// Output:
	// host-1 licensed: 16 PREMIUM units
	// host-2 refused: NO_MORE_UNITS (limit 16)
	// vCPUs in use: 16
}

// An API client authenticates with its client credentials; the client
// fetches the OAuth token and renews it before it expires.
func ExampleNew_apiClient() {
	base, stop := serve()
	defer stop()
	ctx := context.Background()
	admin, err := client.New(client.Options{BaseURL: base, AccountID: 1, User: "admin@customer1", Password: apitest.AdminPassword})
	if err != nil {
		log.Fatal(err)
	}
	ac, err := admin.CreateAPIClient(ctx, client.APIClientInput{Name: "controller", Role: client.RoleAgentRegistrar})
	if err != nil {
		log.Fatal(err)
	}

	c, err := client.New(client.Options{BaseURL: base, AccountID: 1, ClientID: ac.ClientID, ClientSecret: ac.Secret})
	if err != nil {
		log.Fatal(err)
	}
	d, err := c.Register(ctx, client.Registration{AgentID: "m1", AgentType: "MACHINE_AGENT", Host: client.Host{ID: "db-1"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ac.ClientID, d.Status, d.Pool.Name, d.Package)
	// Output: controller@customer1 LICENSED Default INFRA
}
