"""Config editing and Git write-back shared by the closed loops (drift, FinOps).

A loop owns its decision and builds a :class:`gitops.writeback.Change`; this package edits the stack
file byte-faithfully (:mod:`gitops.configedit`) and commits, pushes and opens the pull request
(:mod:`gitops.writeback`).
"""
