"""vmferry's web console: protected applications at a glance, their points and tests, and runs on Temporal.

Served by ``vmferry serve`` (FastAPI, server-rendered Jinja2 pages, a little vanilla JavaScript for the
live parts; every asset is package data). It reads through the library the commands use
(:func:`vmferry.replication.status.status`, :mod:`vmferry.workflows.runs`) and writes only through
Temporal runs, each write guarded by the operator token (:mod:`vmferry.console.auth`).
"""
