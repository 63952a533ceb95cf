"""The device agent: one JSON job on stdin, one JSON result on stdout.

It imports only the standard library, numpy and the runtime the job names, so the same files run
in a child process on the host and, copied over, on a Raspberry Pi.
"""
