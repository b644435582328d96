"""Runtimes: what an artifact is built for and run with, one plugin per runtime.

:mod:`.registry` lists them; :mod:`.base` is the interface every runtime
implements; :mod:`.open` opens any artifact as a runner, whichever runtime it
needs; :mod:`.tiling` lets fixed-size artifacts take any input size.
"""
