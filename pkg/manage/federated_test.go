package manage_test

import (
	"strings"
	"testing"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/storage"
)

// TestFederatedCredentials: the rules of a client's federated credentials
// as the service applies them, each refusal with its code and field, and
// the audit trail of every change.
func TestFederatedCredentials(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		a := f.a
		good := func() manage.FederatedCredentialInput {
			return manage.FederatedCredentialInput{Issuer: "https://token.actions.githubusercontent.com",
				Subject: "repo:o/r:ref:refs/heads/main", Audiences: []string{"https://auth.example", "https://auth.example"},
				Claims: map[string]string{"repository_id": "42"}}
		}
		fc, err := f.svc.CreateFederatedCredential(ctx, a.asAdmin, a.client.ID, 0, good())
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if fc.Name != "repo:o/r:ref:refs/heads/main" || len(fc.Audiences) != 1 || fc.CreatedBy != a.admin.ID || fc.ClientID != a.client.ID {
			t.Errorf("created = %+v, want the subject as name, audiences deduplicated, created by the admin", fc)
		}
		for _, tc := range []struct {
			name  string
			in    func(*manage.FederatedCredentialInput)
			field string
		}{
			{"http issuer", func(in *manage.FederatedCredentialInput) { in.Issuer = "http://issuer.example" }, "issuer"},
			{"loopback issuer", func(in *manage.FederatedCredentialInput) { in.Issuer = "https://127.0.0.1" }, "issuer"},
			{"issuer with a fragment", func(in *manage.FederatedCredentialInput) { in.Issuer = "https://i.example/#x" }, "issuer"},
			{"issuer with a query", func(in *manage.FederatedCredentialInput) { in.Issuer = "https://i.example/?x" }, "issuer"},
			{"subject with spaces around", func(in *manage.FederatedCredentialInput) { in.Subject = " s " }, "subject"},
			{"empty audience", func(in *manage.FederatedCredentialInput) { in.Audiences = []string{""} }, "audiences"},
			{"claim on aud", func(in *manage.FederatedCredentialInput) { in.Claims = map[string]string{"aud": "x"} }, "claims"},
			{"claim name with a space", func(in *manage.FederatedCredentialInput) { in.Claims = map[string]string{"a b": "x"} }, "claims"},
			{"claim value oversized", func(in *manage.FederatedCredentialInput) {
				in.Claims = map[string]string{"a": strings.Repeat("v", 600)}
			}, "claims"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				in := good()
				in.Name = tc.name
				tc.in(&in)
				_, err := f.svc.CreateFederatedCredential(ctx, a.asAdmin, a.client.ID, 0, in)
				e := manage.ErrorOf(err)
				if e == nil || e.Code != manage.Invalid || len(e.Fields) == 0 || e.Fields[0].Field != tc.field {
					t.Fatalf("got %v, want invalid %s", err, tc.field)
				}
			})
		}
		if _, err := f.svc.CreateFederatedCredential(ctx, a.asAdmin, a.client.ID, 0, good()); code(err) != manage.Conflict {
			t.Errorf("a taken name: got %v, want conflict", err)
		}
		if _, err := f.svc.CreateFederatedCredential(ctx, f.b.asAdmin, a.client.ID, 0, good()); code(err) != manage.NotFound {
			t.Errorf("another tenant's client: got %v, want not found", err)
		}
		if _, err := f.svc.ListFederatedCredentials(ctx, f.b.asAdmin, a.client.ID); code(err) != manage.NotFound {
			t.Errorf("another tenant lists: got %v, want not found", err)
		}
		if _, err := f.svc.CreateFederatedCredential(ctx, a.asAdmin, a.client.ID, 999, good()); code(err) != manage.PreconditionFailed {
			t.Errorf("a stale version: got %v, want precondition failed", err)
		}
		if err := f.svc.DeleteFederatedCredential(ctx, a.asAdmin, a.client.ID, fc.ID+1000, 0); code(err) != manage.NotFound {
			t.Errorf("deleting an unknown credential: got %v, want not found", err)
		}
		if err := f.svc.DeleteFederatedCredential(ctx, a.asAdmin, a.client.ID, fc.ID, 0); err != nil {
			t.Fatalf("delete: %v", err)
		}
		list, err := f.svc.ListFederatedCredentials(ctx, a.asAdmin, a.client.ID)
		if err != nil || len(list) != 0 {
			t.Errorf("list after delete = %v, %v", list, err)
		}
		events, err := f.store.ListAudit(ctx, storage.AuditFilter{AccountID: a.account.ID}, storage.Page{Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range events {
			if strings.HasPrefix(e.Action, "client.federated_credential") {
				got = append(got, e.Action+" "+e.Outcome)
			}
		}
		joined := strings.Join(got, ", ")
		for _, want := range []string{"client.federated_credential_create success", "client.federated_credential_delete success",
			"client.federated_credential_create failure"} {
			if !strings.Contains(joined, want) {
				t.Errorf("audit = %s, want %s", joined, want)
			}
		}
	})
}
