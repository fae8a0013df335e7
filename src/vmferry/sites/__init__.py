"""Platform adapters: what a landing site offers, and how a converted VM is made to fit it."""
