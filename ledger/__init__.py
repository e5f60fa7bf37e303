"""The portable benefits ledger: money, plan rules, double-entry postings and services.

This package never imports Flask, marshmallow or APScheduler (see DESIGN.md).
"""
