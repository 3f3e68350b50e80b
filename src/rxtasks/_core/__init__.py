"""The bottom layer: reading task results of any shape, argument checks, and the errors.

Pure: no event loop, no reactivex, no MCP SDK. Everything above imports from here.
"""
