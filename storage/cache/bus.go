package cache

import (
	"context"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Bus carries invalidation messages between the instances sharing one
// database.
//
// Publish sends msg to every subscriber, the publishing instance included.
// Subscribe calls handle with every message published from the moment it
// returns, one call at a time, and with Resync whenever messages may have
// been lost (the subscription dropped and was made again). It stops when
// stop is called or ctx ends; stop waits until handle is no longer called.
type Bus interface {
	Publish(ctx context.Context, msg string) error
	Subscribe(ctx context.Context, handle func(msg string)) (stop func(), err error)
}

// Resync is the message telling a Store that it may have missed
// invalidations: it flushes its whole table.
const Resync = "*"

// subscribeTimeout bounds waiting for Redis to confirm a subscription.
const subscribeTimeout = 5 * time.Second

// RedisBus is a Bus on Redis pub/sub. Redis pub/sub delivers at most once:
// a subscriber that is disconnected misses what is published meanwhile,
// which is why a re-subscription hands Resync to the handler.
type RedisBus struct {
	client  goredis.UniversalClient
	channel string
}

var _ Bus = (*RedisBus)(nil)

// NewRedisBus answers a Bus on channel of client (for example
// "<key prefix>cache"). The caller owns client and closes it after every
// subscription has stopped.
func NewRedisBus(client goredis.UniversalClient, channel string) *RedisBus {
	return &RedisBus{client: client, channel: channel}
}

// Publish sends msg on the channel.
func (b *RedisBus) Publish(ctx context.Context, msg string) error {
	if err := b.client.Publish(ctx, b.channel, msg).Err(); err != nil {
		return fmt.Errorf("publish on %s: %w", b.channel, err)
	}
	return nil
}

// Subscribe subscribes to the channel and waits for Redis to confirm it, then
// hands messages to handle from a goroutine of its own. go-redis reconnects
// and re-subscribes by itself when the connection drops; every confirmation
// after the first reaches handle as Resync.
func (b *RedisBus) Subscribe(ctx context.Context, handle func(msg string)) (func(), error) {
	ps := b.client.Subscribe(ctx, b.channel)
	rctx, cancel := context.WithTimeout(ctx, subscribeTimeout)
	confirm, err := ps.ReceiveTimeout(rctx, subscribeTimeout)
	cancel()
	if err == nil {
		if _, ok := confirm.(*goredis.Subscription); !ok {
			err = fmt.Errorf("unexpected %T", confirm)
		}
	}
	if err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", b.channel, err)
	}

	// A large buffer: go-redis drops a message the channel cannot take.
	ch := ps.ChannelWithSubscriptions(goredis.WithChannelSize(4096))
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			// Closing ends go-redis's reader, which closes ch.
			_ = ps.Close() // a dropped connection may fail to close; nothing to do
			for range ch {
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-quit:
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				switch m := m.(type) {
				case *goredis.Subscription:
					if m.Kind == "subscribe" {
						handle(Resync)
					}
				case *goredis.Message:
					handle(m.Payload)
				}
			}
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() { close(quit) })
		<-done
	}
	return stop, nil
}
