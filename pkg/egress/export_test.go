package egress

import "context"

// GetUnchecked is Get without CheckURL: the dialer's own check, alone.
func (c *Client) GetUnchecked(ctx context.Context, rawURL string) ([]byte, error) {
	return c.get(ctx, rawURL)
}
