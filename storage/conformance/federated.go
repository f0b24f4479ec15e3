package conformance

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// FederatedStore is what RunFederatedCredentials needs: clients to hang
// the credentials on.
type FederatedStore interface {
	ClientsStore
	storage.FederatedCredentials
}

// RunFederatedCredentials tests a storage.FederatedCredentials.
func RunFederatedCredentials(t *testing.T, newStore func(t *testing.T) FederatedStore) {
	t.Run("CreateListDelete", func(t *testing.T) { testFederatedCreateListDelete(t, newStore(t)) })
	t.Run("NameTaken", func(t *testing.T) { testFederatedNameTaken(t, newStore(t)) })
	t.Run("UnknownClient", func(t *testing.T) { testFederatedUnknownClient(t, newStore(t)) })
	t.Run("OtherClient", func(t *testing.T) { testFederatedOtherClient(t, newStore(t)) })
	t.Run("DeletedWithClient", func(t *testing.T) { testFederatedDeletedWithClient(t, newStore(t)) })
}

func newFederatedClient(t *testing.T, s FederatedStore) (clientFixture, storage.Client) {
	t.Helper()
	f := newClientFixture(t, s)
	c, err := s.CreateClient(t.Context(), f.fullClient())
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	return f, c
}

func githubCredential(clientID, creator int64, name string) storage.FederatedCredential {
	return storage.FederatedCredential{
		ClientID:  clientID,
		Name:      name,
		Issuer:    "https://token.actions.githubusercontent.com",
		Subject:   "repo:octo-org/deploy:ref:refs/heads/main",
		Audiences: []string{"https://tollgate.example", "api://tollgate"},
		Claims:    map[string]string{"repository_id": "123456", "job_workflow_ref": "octo-org/deploy/.github/workflows/release.yml@refs/heads/main"},
		CreatedBy: creator,
		CreatedAt: time.Date(2026, 12, 7, 10, 0, 0, 123456000, time.FixedZone("CET", 3600)),
	}
}

func testFederatedCreateListDelete(t *testing.T, s FederatedStore) {
	ctx := t.Context()
	f, c := newFederatedClient(t, s)
	in := githubCredential(c.ID, f.creator.ID, "release")
	got, err := s.CreateFederatedCredential(ctx, in)
	if err != nil {
		t.Fatalf("CreateFederatedCredential: %v", err)
	}
	if got.ID == 0 {
		t.Fatal("CreateFederatedCredential: id 0")
	}
	want := in
	want.ID, want.CreatedAt = got.ID, in.CreatedAt.UTC()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CreateFederatedCredential = %+v, want %+v", got, want)
	}
	k8s := storage.FederatedCredential{ClientID: c.ID, Name: "cluster", Issuer: "https://k8s.example/cluster-1",
		Subject: "system:serviceaccount:billing:exporter", Audiences: []string{"tollgate"}, CreatedAt: in.CreatedAt}
	second, err := s.CreateFederatedCredential(ctx, k8s)
	if err != nil {
		t.Fatalf("CreateFederatedCredential (no claims, no creator): %v", err)
	}
	if second.Claims == nil || len(second.Claims) != 0 || second.CreatedBy != 0 {
		t.Errorf("credential without claims and creator = %+v, want empty claims and creator 0", second)
	}
	list, err := s.ListFederatedCredentials(ctx, c.ID)
	if err != nil {
		t.Fatalf("ListFederatedCredentials: %v", err)
	}
	if len(list) != 2 || !reflect.DeepEqual(list[0], got) || list[1].ID != second.ID {
		t.Fatalf("ListFederatedCredentials = %+v, want [%+v, %+v]", list, got, second)
	}
	if err := s.DeleteFederatedCredential(ctx, c.ID, got.ID); err != nil {
		t.Fatalf("DeleteFederatedCredential: %v", err)
	}
	if err := s.DeleteFederatedCredential(ctx, c.ID, got.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteFederatedCredential again: got %v, want ErrNotFound", err)
	}
	list, err = s.ListFederatedCredentials(ctx, c.ID)
	if err != nil || len(list) != 1 || list[0].ID != second.ID {
		t.Errorf("ListFederatedCredentials after delete = %+v, %v; want only %d", list, err, second.ID)
	}
}

func testFederatedNameTaken(t *testing.T, s FederatedStore) {
	ctx := t.Context()
	f, c := newFederatedClient(t, s)
	if _, err := s.CreateFederatedCredential(ctx, githubCredential(c.ID, f.creator.ID, "release")); err != nil {
		t.Fatalf("CreateFederatedCredential: %v", err)
	}
	_, err := s.CreateFederatedCredential(ctx, githubCredential(c.ID, f.creator.ID, "release"))
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("second credential of one name: got %v, want ErrAlreadyExists", err)
	}
}

func testFederatedUnknownClient(t *testing.T, s FederatedStore) {
	_, err := s.CreateFederatedCredential(t.Context(), githubCredential(1<<40, 0, "release"))
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("credential of an unknown client: got %v, want ErrNotFound", err)
	}
	list, err := s.ListFederatedCredentials(t.Context(), 1<<40)
	if err != nil || len(list) != 0 {
		t.Errorf("ListFederatedCredentials of an unknown client = %v, %v; want none", list, err)
	}
}

func testFederatedOtherClient(t *testing.T, s FederatedStore) {
	ctx := t.Context()
	f, a := newFederatedClient(t, s)
	b, err := s.CreateClient(ctx, f.fullClient())
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	fc, err := s.CreateFederatedCredential(ctx, githubCredential(a.ID, 0, "release"))
	if err != nil {
		t.Fatalf("CreateFederatedCredential: %v", err)
	}
	// One name per client, not per store.
	if _, err := s.CreateFederatedCredential(ctx, githubCredential(b.ID, 0, "release")); err != nil {
		t.Fatalf("CreateFederatedCredential of the same name on another client: %v", err)
	}
	if err := s.DeleteFederatedCredential(ctx, b.ID, fc.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteFederatedCredential through another client: got %v, want ErrNotFound", err)
	}
	list, err := s.ListFederatedCredentials(ctx, a.ID)
	if err != nil || len(list) != 1 {
		t.Errorf("ListFederatedCredentials = %v, %v; want the one credential", list, err)
	}
}

func testFederatedDeletedWithClient(t *testing.T, s FederatedStore) {
	ctx := t.Context()
	f, c := newFederatedClient(t, s)
	if _, err := s.CreateFederatedCredential(ctx, githubCredential(c.ID, f.creator.ID, "release")); err != nil {
		t.Fatalf("CreateFederatedCredential: %v", err)
	}
	if err := s.DeleteClient(ctx, c.ID); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	list, err := s.ListFederatedCredentials(ctx, c.ID)
	if err != nil || len(list) != 0 {
		t.Errorf("ListFederatedCredentials after deleting the client = %v, %v; want none", list, err)
	}
}
