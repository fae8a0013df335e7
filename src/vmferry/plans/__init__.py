"""Applications and their surroundings: model them, plan a move between sites, apply it.

Public API (see ``docs/app.md``)::

    load_app(path, sites_file=None) -> App         read and validate an application manifest (YAML)
    build_plan(app, source, target) -> Plan        everything that must change for the move
    read_flows_csv, read_ss, suggest               dependencies seen on the wire, not yet declared
    apply_plan(plan, site, journal) -> ApplyReport DNS (RFC 2136 + TSIG), locator, HAProxy, nftables
    to_dot, write_svg                              the graph of the application and its changes
"""

from __future__ import annotations

from vmferry.plans.apply import ApplyReport, StepResult, apply_plan, default_journal
from vmferry.plans.discover import Flow, Suggestion, read_flows_csv, read_ss, suggest
from vmferry.plans.graph import to_dot, write_svg
from vmferry.plans.manifest import load_app
from vmferry.plans.model import App, Component, Dependency, Service, Site
from vmferry.plans.plan import Plan, Step, build_plan

__all__ = ["App", "ApplyReport", "Component", "Dependency", "Flow", "Plan", "Service", "Site", "Step",
           "StepResult", "Suggestion", "apply_plan", "build_plan", "default_journal", "load_app",
           "read_flows_csv", "read_ss", "suggest", "to_dot", "write_svg"]
