"""Recovery runs: bring an application's replicas up at another site (test failover now; failover,
reprotect and failback next), prove each VM, report the measured recovery time."""
