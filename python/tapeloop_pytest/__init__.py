"""pytest plugin for tapeloop: serve recorded LLM provider streams to the code under test."""

from .plugin import TapeloopServer, start_server

__all__ = ["TapeloopServer", "start_server"]
