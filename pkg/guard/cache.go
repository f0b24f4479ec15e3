package guard

import (
	"container/list"
	"crypto/sha256"
	"slices"
	"sync"
	"time"
)

// cache keeps allowed identities for a fixed ttl, at most max of them. Every
// entry lives exactly ttl, so the list in insertion order is also in expiry
// order: the front is the first to expire and the first to make room.
type cache struct {
	ttl        time.Duration
	maxEntries int
	now        func() time.Time

	mu    sync.Mutex
	byKey map[[sha256.Size]byte]*list.Element
	order *list.List // of *entry, oldest first
}

type entry struct {
	key      [sha256.Size]byte
	identity Identity
	expires  time.Time
}

func newCache(ttl time.Duration, maxEntries int, now func() time.Time) *cache {
	return &cache{ttl: ttl, maxEntries: maxEntries, now: now, byKey: map[[sha256.Size]byte]*list.Element{}, order: list.New()}
}

func (c *cache) get(key [sha256.Size]byte) (Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return Identity{}, false
	}
	e := el.Value.(*entry)
	if !c.now().Before(e.expires) {
		c.remove(el)
		return Identity{}, false
	}
	id := e.identity
	id.Scopes = slices.Clone(id.Scopes) // a handler may not change the cached one
	return id, true
}

func (c *cache) put(key [sha256.Size]byte, id Identity) {
	now := c.now()
	id.Scopes = slices.Clone(id.Scopes)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		c.remove(el)
	}
	for c.order.Len() > 0 {
		front := c.order.Front()
		if c.order.Len() < c.maxEntries && now.Before(front.Value.(*entry).expires) {
			break
		}
		c.remove(front)
	}
	c.byKey[key] = c.order.PushBack(&entry{key: key, identity: id, expires: now.Add(c.ttl)})
}

func (c *cache) remove(el *list.Element) {
	delete(c.byKey, el.Value.(*entry).key)
	c.order.Remove(el)
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
