"""The admin API: registry administration, journals for auditors, API tokens (docs/admin-api.md)."""
