"""Autoscaling (SPEC 8.5): the HPA-style engine (pure), scaling policies and their
decisions, the controller loop, and cluster-autoscaler's externalgrpc provider."""
