"""The store: every SQL statement of AutoCall lives in this package, behind functions named for what they do."""
