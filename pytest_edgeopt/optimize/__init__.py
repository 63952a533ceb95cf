"""Optimize stage (host): export, convert and quantize models into cached artifact files."""
