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
