package federation_test

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/oidctest"
	"github.com/tollgate/tollgate/pkg/assertion"
	"github.com/tollgate/tollgate/pkg/egress"
	"github.com/tollgate/tollgate/pkg/federation"
	"github.com/tollgate/tollgate/storage"
)

// alwaysNew is a one-time store that never refuses, so that a benchmark
// can present one token many times and measure the checks, not the store.
type alwaysNew struct{}

func (alwaysNew) UseOnce(context.Context, string, time.Time) error { return nil }

// BenchmarkCheck measures a federated token's verification in the steady
// state, the issuer's keys cached: parse, the ES256 signature, the claims
// and the conditions of a GitHub Actions token. The one-time store's round
// trip (Redis in production) and the credentials' query are left out.
func BenchmarkCheck(b *testing.B) {
	is := oidctest.New(b)
	v, err := federation.New(federation.Options{
		Credentials: github(is.URL),
		Fetcher:     egress.New(egress.Options{AllowInsecure: true}),
		AllowHTTP:   true,
		Used:        alwaysNew{},
	})
	if err != nil {
		b.Fatal(err)
	}
	raw := is.Sign(b, is.GitHubActions(audience, time.Now()))
	c := storage.Client{ID: 7}
	ctx := context.Background()
	check := func() error {
		e, err := assertion.ParseExternal(raw)
		if err != nil {
			return err
		}
		return v.Check(ctx, c, e)
	}
	if err := check(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := check(); err != nil {
			b.Fatal(err)
		}
	}
}
