-- Webhook deliveries are kept for webhooks.delivery_retention: the pruning
-- step deletes, in batches and oldest first, the finished ones (delivered
-- or failed) created before the cutoff, and never a pending one. This index
-- holds only finished rows, so the pending outbox pays nothing for it.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (created_at) WHERE status <> 'pending';
