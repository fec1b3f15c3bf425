"""Reports: what happened on the lines, from call records and campaign attempts (terminal, JSON, HTML)."""
