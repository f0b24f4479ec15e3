package conformance

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// RunSigningKeys tests a storage.SigningKeys.
func RunSigningKeys(t *testing.T, newStore func(t *testing.T) storage.SigningKeys) {
	t.Run("CreateList", func(t *testing.T) { testSigningKeysCreateList(t, newStore(t)) })
	t.Run("Unique", func(t *testing.T) { testSigningKeysUnique(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testSigningKeysDelete(t, newStore(t)) })
}

func signingKey(id string, activeAt time.Time) storage.SigningKey {
	return storage.SigningKey{
		ID:        id,
		Algorithm: "ES256",
		Sealed:    []byte("sealed\x00" + id),
		CreatedAt: activeAt.Add(-time.Hour),
		ActiveAt:  activeAt,
	}
}

func createSigningKey(t *testing.T, s storage.SigningKeys, k storage.SigningKey) {
	t.Helper()
	if err := s.CreateSigningKey(t.Context(), k); err != nil {
		t.Fatalf("CreateSigningKey(%s): %v", k.ID, err)
	}
}

func testSigningKeysCreateList(t *testing.T, s storage.SigningKeys) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// Created out of order: the list is by ActiveAt.
	createSigningKey(t, s, signingKey("k2", base.Add(48*time.Hour)))
	createSigningKey(t, s, signingKey("k1", base))
	k3 := signingKey("k3", base.Add(24*time.Hour))
	k3.Algorithm = "EdDSA"
	createSigningKey(t, s, k3)

	got, err := s.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatalf("ListSigningKeys: %v", err)
	}
	var ids []string
	for _, k := range got {
		ids = append(ids, k.ID)
	}
	if want := []string{"k1", "k3", "k2"}; !equalStrings(ids, want) {
		t.Fatalf("ListSigningKeys ids: got %v, want %v", ids, want)
	}
	k := got[1]
	if k.Algorithm != "EdDSA" || !bytes.Equal(k.Sealed, k3.Sealed) || !k.ActiveAt.Equal(k3.ActiveAt) || !k.CreatedAt.Equal(k3.CreatedAt) {
		t.Errorf("ListSigningKeys k3: got %+v, want %+v", k, k3)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testSigningKeysUnique(t *testing.T, s storage.SigningKeys) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	createSigningKey(t, s, signingKey("k1", at))
	for _, tc := range []struct {
		name string
		k    storage.SigningKey
	}{
		{"same id", signingKey("k1", at.Add(time.Hour))},
		{"same active time", signingKey("k2", at)},
	} {
		if err := s.CreateSigningKey(t.Context(), tc.k); !errors.Is(err, storage.ErrAlreadyExists) {
			t.Errorf("CreateSigningKey, %s: got error %v, want %v", tc.name, err, storage.ErrAlreadyExists)
		}
	}
	got, err := s.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatalf("ListSigningKeys: %v", err)
	}
	if len(got) != 1 {
		t.Errorf("ListSigningKeys: got %d keys, want 1", len(got))
	}
}

func testSigningKeysDelete(t *testing.T, s storage.SigningKeys) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	createSigningKey(t, s, signingKey("k1", at))
	createSigningKey(t, s, signingKey("k2", at.Add(time.Hour)))
	if err := s.DeleteSigningKey(t.Context(), "k1"); err != nil {
		t.Fatalf("DeleteSigningKey: %v", err)
	}
	if err := s.DeleteSigningKey(t.Context(), "k1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteSigningKey again: got error %v, want %v", err, storage.ErrNotFound)
	}
	got, err := s.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatalf("ListSigningKeys: %v", err)
	}
	if len(got) != 1 || got[0].ID != "k2" {
		t.Errorf("ListSigningKeys after delete: got %+v, want only k2", got)
	}
}
