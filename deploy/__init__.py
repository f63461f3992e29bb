"""Deployment helpers run by the Makefile (``make deploy``)."""
