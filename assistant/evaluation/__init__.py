"""The project's own evaluations: they print a table and write results.json and a chart."""
