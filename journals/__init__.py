"""Journals: the logging journal now; incident and registration journals join it."""
