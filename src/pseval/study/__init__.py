"""Experiments: the demo job, sweeps, reports and plots."""
