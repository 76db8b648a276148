"""The front doors: HTTP in and out of the SOAP channels, the published contract, /health and /metrics; the
only room that knows about requests and responses."""
