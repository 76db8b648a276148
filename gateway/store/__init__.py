"""The gateway's own tables: the asynchronous message store, its delivery tasks and delivery-point state."""
