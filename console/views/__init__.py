"""The console's pages, by area; ``generic`` holds the two flows they share (a form that
saves through a service, an action that changes one row)."""
