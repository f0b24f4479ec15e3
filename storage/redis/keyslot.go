package redis

import (
	"strconv"
	"strings"
)

// slots is the number of Redis Cluster hash slots.
const slots = 16384

// ClusterShards is Options.Shards on a Redis Cluster client: the number of
// hash slots the token keys are spread across (see the package doc).
const ClusterShards = 16

// MaxShards bounds Options.Shards: RevokeRequest writes one marker per shard.
const MaxShards = 256

// keySlot answers the Redis Cluster hash slot of key: CRC16 (XMODEM) of its
// hash tag, the bytes between the first '{' and the first '}' after it when
// there are any, else of the whole key, modulo 16384.
func keySlot(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if n := strings.IndexByte(key[open+1:], '}'); n > 0 {
			key = key[open+1 : open+1+n]
		}
	}
	var crc uint16
	for i := range len(key) {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % slots
}

// shardTags answers the hash tag of each of n shards: the first base-36
// numeral ("0", "1", …, "z", "10", …) whose slot falls in the shard's
// 1/n-th of the slot range. The slots are thus spread evenly over the
// range, and a cluster whose masters own contiguous ranges of about equal
// size (as redis-cli --cluster create makes them) gets about n/masters
// shards on each master. The tags are part of the key layout: the same n
// must always give the same tags.
func shardTags(n int) []string {
	tags := make([]string, n)
	for i := range tags {
		lo, hi := i*slots/n, (i+1)*slots/n
		for c := int64(0); ; c++ {
			tag := strconv.FormatInt(c, 36)
			if s := keySlot(tag); lo <= s && s < hi {
				tags[i] = tag
				break
			}
		}
	}
	return tags
}

// shardOf answers the shard of a signature among n: FNV-1a of its bytes,
// which are random (an HMAC), so tokens spread evenly. Part of the layout.
func shardOf(signature string, n int) int {
	if n == 1 {
		return 0
	}
	h := uint32(2166136261)
	for i := range len(signature) {
		h ^= uint32(signature[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}
