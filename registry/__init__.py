"""The service registry: organisations, information systems, services, users, routes and delivery points."""
