package redis

// TokenKey answers the key of a signature; MarkerKey, ExpiryKey and
// HorizonKey the keys of a request's marker, of its own horizon and of the
// horizon in the shard of signature, for tests that look at Redis directly.
func (s *Store) TokenKey(signature string) string {
	sh, sig, _ := s.place(signature)
	return sh.tokenKey(sig)
}
func (s *Store) MarkerKey(signature, requestID string) string {
	return s.shardOf(signature).markerKey(requestID)
}
func (s *Store) ExpiryKey(signature, requestID string) string {
	return s.shardOf(signature).expiryKey(requestID)
}
func (s *Store) HorizonKey(signature string) string { return s.shardOf(signature).horizon }

// Shards answers the number of shards of s.
func (s *Store) Shards() int { return len(s.shards) }

// HorizonSlack is how much longer than the longest-lived token the horizon
// may live.
const HorizonSlack = horizonSlack

// KeySlot and ShardTags expose the hash slot computation.
var (
	KeySlot   = keySlot
	ShardTags = shardTags
)
