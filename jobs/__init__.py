"""Scheduled jobs; later issues fill this package (accrual, reconciliation, closing)."""
