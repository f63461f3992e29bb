"""export-preflight: pre-export validation of Pleo export jobs.

Data flows one way: queue message -> export job (re-read from Pleo) -> company
configuration and credentials -> preflight checks -> one decision -> one action
(fail the job in Pleo, or hand it on to item processing).
"""
