package redis

// TokenKey and MarkerKey answer the keys a store uses, for tests that look
// at Redis directly.
func (s *Store) TokenKey(signature string) string  { return s.tokenKey(signature) }
func (s *Store) MarkerKey(requestID string) string { return s.markerKey(requestID) }

// HorizonSlack is how much longer than the longest-lived token the horizon
// may live.
const HorizonSlack = horizonSlack

// ExpiryKey answers the key of a request's own horizon.
func (s *Store) ExpiryKey(requestID string) string { return s.expiryKey(requestID) }
