"""Git hooks enforcing the runner's scope and gate policy on hand-made commits and pushes."""
