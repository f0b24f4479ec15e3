package secret

import (
	"runtime"
	"testing"
	"time"
)

// No more hashes than GOMAXPROCS are computed at once: with every slot
// taken, a verification waits until one is freed.
func TestPasswordsBoundConcurrentHashes(t *testing.T) {
	pw, err := NewPasswords(Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := pw.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cap(pw.slots), runtime.GOMAXPROCS(0); got != want {
		t.Fatalf("slots = %d, want GOMAXPROCS = %d", got, want)
	}
	for range cap(pw.slots) {
		pw.slots <- struct{}{}
	}
	done := make(chan bool)
	go func() {
		ok, _ := pw.Verify(hash, "correct horse")
		done <- ok
	}()
	select {
	case <-done:
		t.Fatal("a verification ran while every slot was taken")
	case <-time.After(50 * time.Millisecond):
	}
	<-pw.slots
	if ok := <-done; !ok {
		t.Fatal("the verification that waited for a slot failed")
	}
}

// The dummy hash an unknown user is verified against costs what a real
// user's hash costs: the same argon2id parameters as the ones Hash uses.
func TestPasswordsDummyCostsAsMuch(t *testing.T) {
	for _, p := range []Argon2Params{
		{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32},
		{Memory: 128, Iterations: 3, Parallelism: 2, SaltLength: 16, KeyLength: 32},
	} {
		pw, err := NewPasswords(p)
		if err != nil {
			t.Fatal(err)
		}
		got, _, key, err := decodeArgon2id(pw.dummy)
		if err != nil {
			t.Fatalf("the dummy hash %q: %v", pw.dummy, err)
		}
		if got.Memory != p.Memory || got.Iterations != p.Iterations || got.Parallelism != p.Parallelism || len(key) != int(p.KeyLength) {
			t.Errorf("dummy hash parameters m=%d t=%d p=%d key %d bytes, want m=%d t=%d p=%d key %d bytes",
				got.Memory, got.Iterations, got.Parallelism, len(key), p.Memory, p.Iterations, p.Parallelism, p.KeyLength)
		}
	}
}
