"""Outbound HTTP: the pooled client that delivery (providers, PUSH recipients) and the back-office adapters both
call through."""
