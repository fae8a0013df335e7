"""Durable runs of protection and replication on Temporal (issue 12): see docs/workflows.md."""
