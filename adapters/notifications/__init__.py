"""Telling residents how their problem stands: the outbox's messages, written out and delivered by a sender."""
