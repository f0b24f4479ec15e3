package secret

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2Params are the argon2id cost parameters for user passwords.
type Argon2Params struct {
	Memory      uint32 // KiB
	Iterations  uint32
	Parallelism uint8
	SaltLength  uint32
	KeyLength   uint32
}

// DefaultArgon2Params follow the OWASP password storage recommendation for
// argon2id (19 MiB, 2 iterations, 1 lane).
var DefaultArgon2Params = Argon2Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// MaxPasswordLength bounds the input of the slow hash so a huge password
// cannot buy CPU time.
const MaxPasswordLength = 1024

// ErrPasswordTooLong is returned for passwords over MaxPasswordLength bytes.
var ErrPasswordTooLong = errors.New("password too long")

var errBadHash = errors.New("unrecognised password hash")

// Bounds on the cost of a stored hash, so a crafted or corrupt hash cannot
// make one verification burn memory or CPU.
const (
	maxBcryptCost    = 14
	maxArgon2Memory  = 256 * 1024 // KiB
	maxArgon2Iter    = 10
	maxArgon2Threads = 16
)

// Passwords hashes and verifies user passwords. At most GOMAXPROCS hashes
// are computed at once; other calls wait their turn. argon2id's cost is
// memory as much as CPU (19 MiB a hash with the defaults), and with the CPU
// busy more at once only hold more memory, not finish sooner: 64 logins at
// once held 1.6 GB before this bound (.ci/bench.sh, eskimi_dsp at c = 64).
type Passwords struct {
	params Argon2Params
	// dummy is verified when the user is unknown, so a wrong username costs
	// as much as a wrong password.
	dummy string
	// slots bounds the hashes computed at once.
	slots chan struct{}
	// derivations counts the hashes computed, for Derivations.
	derivations atomic.Int64
}

// Derivations returns how many password hashes (argon2id or bcrypt) pw has
// computed: hashing, verifying and dummy verifying each compute one. It is
// the work whose time a caller can measure, so tests count it to check that
// every refusal of a sign-in costs the same whatever its reason.
func (pw *Passwords) Derivations() int64 { return pw.derivations.Load() }

// NewPasswords returns a Passwords hashing with p.
func NewPasswords(p Argon2Params) (*Passwords, error) {
	pw := &Passwords{params: p, slots: make(chan struct{}, runtime.GOMAXPROCS(0))}
	dummy, err := pw.Hash("tollgate-dummy-password")
	if err != nil {
		return nil, err
	}
	pw.dummy = dummy
	return pw, nil
}

// Hash returns the argon2id hash of password in PHC string format.
func (pw *Passwords) Hash(password string) (string, error) {
	if len(password) > MaxPasswordLength {
		return "", ErrPasswordTooLong
	}
	p := pw.params
	salt := make([]byte, p.SaltLength)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	pw.slots <- struct{}{}
	pw.derivations.Add(1)
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLength)
	<-pw.slots
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Iterations, p.Parallelism,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether password matches hash, an argon2id PHC string or a
// bcrypt hash. An unreadable hash is an error, a wrong password is not.
func (pw *Passwords) Verify(hash, password string) (bool, error) {
	if len(password) > MaxPasswordLength {
		return false, nil
	}
	if strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$") {
		// A stored hash must not be able to buy unbounded CPU.
		if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost > maxBcryptCost {
			return false, errBadHash
		}
		pw.slots <- struct{}{}
		pw.derivations.Add(1)
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
		<-pw.slots
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		return err == nil, err
	}
	p, salt, key, err := decodeArgon2id(hash)
	if err != nil {
		return false, err
	}
	pw.slots <- struct{}{}
	pw.derivations.Add(1)
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, uint32(len(key))) // #nosec G115 -- decodeArgon2id bounds the key to 16..64 bytes
	<-pw.slots
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// VerifyDummy spends the time of one verification and reports false. Call it
// when the user is unknown so that case cannot be told apart by timing.
func (pw *Passwords) VerifyDummy(password string) {
	_, _ = pw.Verify(pw.dummy, password)
}

func decodeArgon2id(hash string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Iterations, &p.Parallelism); err != nil {
		return p, nil, nil, errBadHash
	}
	// Refuse parameters that would let a crafted hash burn memory or CPU.
	if p.Memory == 0 || p.Memory > maxArgon2Memory || p.Iterations == 0 || p.Iterations > maxArgon2Iter ||
		p.Parallelism == 0 || p.Parallelism > maxArgon2Threads {
		return p, nil, nil, errBadHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return p, nil, nil, errBadHash
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}
