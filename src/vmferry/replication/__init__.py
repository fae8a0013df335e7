"""Protection groups, replicas and recovery points (issue 12): see docs/replication.md."""
