"""Example patch script: add a short document. Runs with the workspace as working directory."""

from pathlib import Path

FILES = ["docs/example.md"]

target = Path("docs/example.md")
target.parent.mkdir(parents=True, exist_ok=True)
target.write_text("# Example\n\nWritten by an am-patch example patch script.\n")
