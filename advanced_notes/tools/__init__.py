"""Operator and developer tools: the command line, the embedded dev runner, the storage doctor."""
