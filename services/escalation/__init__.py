"""Escalation: owns tasks and their deadlines; raises what is not handled in time up the chain."""
