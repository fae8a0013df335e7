"""Cloud burst: independent copies of a component at a burst site, added when load rises and taken
away when it falls, with the load balancer, DNS and the locator following (issue 14)."""
