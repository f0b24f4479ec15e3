package jwt

// Remembered is how many tokens f remembers as verified.
func (f *Format) Remembered() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.verified)
}

// MaxVerified and VerifiedTTL are the bounds of that memory.
const (
	MaxVerified = maxVerified
	VerifiedTTL = verifiedTTL
)
