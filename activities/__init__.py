"""Side effects: outbound contact through providers, and the audit append.

Every activity is idempotent: provider calls carry a key derived from the case and
its event sequence, and audit rows are unique per case and sequence number.
"""
